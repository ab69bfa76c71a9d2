"""Apicurio Registry as a local process: a Confluent-compatible schema registry without Docker.

The compose stack uses Redpanda's built-in registry. Where neither Docker nor a stack is at hand
(this project's CI), Apicurio Registry 2.6 from Maven Central stands in: it runs on Java 17 with
in-memory storage and serves the Confluent API under ``/apis/ccompat/v7``, which is what
confluent-kafka's schema-registry client speaks.
"""

from __future__ import annotations

import tarfile
import urllib.request
from pathlib import Path

from meterstream.devservices.process import (
    RunningService,
    free_port,
    run_checked,
    spawn,
    wait_until_ready,
)
from meterstream.devservices.tools import cache_dir, java_binary, require

APICURIO_VERSION = "2.6.13.Final"
_ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
CCOMPAT_PATH = "/apis/ccompat/v7"


def apicurio_jar() -> Path:
    """The runner jar, downloaded from Maven Central and unpacked on first use (about 140 MB)."""
    home = cache_dir() / "apicurio" / APICURIO_VERSION
    jar = home / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
    if jar.exists():
        return jar
    mvn = require("mvn", "install Maven with `apt-get install -y maven`")
    download = cache_dir() / "apicurio" / "download"
    run_checked(
        [
            mvn,
            "-q",
            "-B",
            f"-Dmaven.repo.local={cache_dir() / 'm2'}",
            "dependency:copy",
            f"-Dartifact={_ARTIFACT}",
            f"-DoutputDirectory={download}",
        ],
        what=f"downloading Apicurio Registry {APICURIO_VERSION} from Maven Central",
    )
    archive = next(download.glob("apicurio-registry-app-*.tar.gz"))
    staging = home.with_name(home.name + ".partial")
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    # The archive has one top-level folder or none, depending on the release: find the jar.
    runner = next(staging.rglob(jar.name))
    runner.parent.rename(home)
    archive.unlink()
    return jar


def start_registry(
    data_dir: Path, *, port: int | None = None, timeout_s: float = 90.0
) -> RunningService:
    jar = apicurio_jar()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "registry.log"
    process = spawn(
        [
            java_binary(),
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={port}",
            "-jar",
            str(jar),
        ],
        log_path=log_path,
        cwd=data_dir,
    )
    url = f"http://127.0.0.1:{port}{CCOMPAT_PATH}"
    wait_until_ready(
        f"Apicurio Registry {APICURIO_VERSION}",
        lambda: _answers(url),
        process=process,
        log_path=log_path,
        timeout_s=timeout_s,
    )
    return RunningService(
        name="registry",
        pid=process.pid,
        log_path=log_path,
        data_dir=data_dir,
        env={"METERSTREAM_SCHEMA_REGISTRY_URL": url},
    )


def _answers(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)
