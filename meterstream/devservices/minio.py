"""MinIO built from source with ``go install`` (its vendor no longer ships community binaries).

MinIO has no semver tags, so ``@latest`` would follow its main branch: the version is pinned to
a Go pseudo-version that the module proxy serves, and the binary is cached per version.
"""

from __future__ import annotations

import os
import secrets
import urllib.request
from pathlib import Path

from meterstream.devservices.process import (
    RunningService,
    free_port,
    run_checked,
    spawn,
    wait_until_ready,
)
from meterstream.devservices.tools import cache_dir, require

# The newest MinIO commit the Go module proxy serves (2026-02-12). The last tagged community
# release (RELEASE.2025-10-15T17-29-55Z, v0.0.0-20251015172955-9e49d5e7a648) is refused by the
# proxy, so this is the pinned version.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_MODULE = "github.com/minio/minio"
ACCESS_KEY = "meterstream"


def minio_binary() -> Path:
    """The cached MinIO binary, built on first use (needs Go; minutes on 2 cores)."""
    target_dir = cache_dir() / "minio" / MINIO_VERSION
    binary = target_dir / "minio"
    if binary.exists():
        return binary
    go = require(
        "go", "install Go 1.24 or newer (https://go.dev/doc/install or `apt-get install golang`)"
    )
    env = {
        **os.environ,
        "GOBIN": str(target_dir),
        "GOMODCACHE": str(cache_dir() / "go" / "mod"),
        "GOCACHE": str(cache_dir() / "go" / "build"),
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }
    run_checked(
        [go, "install", "-trimpath", f"{MINIO_MODULE}@{MINIO_VERSION}"],
        what=f"building MinIO {MINIO_VERSION} with go install",
        env=env,
    )
    return binary


def start_minio(
    data_dir: Path,
    *,
    port: int | None = None,
    secret_key: str | None = None,
    timeout_s: float = 60.0,
) -> RunningService:
    binary = minio_binary()
    port = port or free_port()
    console_port = free_port()
    secret_key = secret_key or secrets.token_urlsafe(18)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "minio.log"
    env = {
        **os.environ,
        "MINIO_ROOT_USER": ACCESS_KEY,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CI_CD": "1",
    }
    process = spawn(
        [
            str(binary),
            "server",
            str(data_dir / "data"),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console_port}",
            "--quiet",
        ],
        log_path=log_path,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_ready(
        "MinIO",
        lambda: _healthy(endpoint),
        process=process,
        log_path=log_path,
        timeout_s=timeout_s,
    )
    return RunningService(
        name="minio",
        pid=process.pid,
        log_path=log_path,
        data_dir=data_dir,
        env={
            "METERSTREAM_S3_ENDPOINT": endpoint,
            "METERSTREAM_S3_ACCESS_KEY": ACCESS_KEY,
            "METERSTREAM_S3_SECRET_KEY": secret_key,
        },
    )


def _healthy(endpoint: str) -> bool:
    with urllib.request.urlopen(f"{endpoint}/minio/health/live", timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)
