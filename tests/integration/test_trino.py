"""deploy/trino against MinIO: init.sql and views.sql on a real Trino server.

Opt-in (marker ``trino``) and skipped unless a Trino server tarball is cached under
``~/.cache/meterstream/trino/`` (about 820 MB for 476; CI must not download it), e.g.::

    mkdir -p ~/.cache/meterstream/trino && cd ~/.cache/meterstream/trino
    curl -fLO https://repo1.maven.org/maven2/io/trino/trino-server/476/trino-server-476.tar.gz

Trino 476 needs Java 24 or newer: a JDK 25 is looked for under /usr/lib/jvm (or TRINO_JAVA_HOME).
Only the Hive plugin is loaded, and the heap is 2 GB, so the server starts in well under a
minute on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from sinks.query.lake import open_lake, run_query
from sinks.query.trino import DEFAULT_BUCKET
from tests.services.endpoints import S3Endpoint
from tests.support.lake_files import lake_settings, put_file, put_lake, reading_row

pytestmark = pytest.mark.trino

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "trino"
CACHE = Path.home() / ".cache" / "meterstream" / "trino"
START_TIMEOUT = 240.0


def _tarball() -> Path | None:
    found = sorted(CACHE.glob("trino-server-*.tar.gz"))
    return found[-1] if found else None


def _java_home() -> Path | None:
    if os.environ.get("TRINO_JAVA_HOME"):
        return Path(os.environ["TRINO_JAVA_HOME"])
    for candidate in sorted(Path("/usr/lib/jvm").glob("*25*")):
        if (candidate / "bin" / "java").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Trino:
    url: str

    def query(self, sql: str) -> list[list[Any]]:
        """Run one statement through Trino's HTTP protocol; rows, or an AssertionError."""
        request = urllib.request.Request(
            f"{self.url}/v1/statement",
            data=sql.encode(),
            headers={"X-Trino-User": "test", "X-Trino-Time-Zone": "UTC"},
            method="POST",
        )
        rows: list[list[Any]] = []
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.load(response)
        while True:
            if "error" in page:
                raise AssertionError(f"{sql[:60]!r}: {page['error'].get('message')}")
            rows += page.get("data", [])
            if "nextUri" not in page:
                return rows
            with urllib.request.urlopen(page["nextUri"], timeout=60) as response:
                page = json.load(response)


def _etc(root: Path, server: Path, port: int, bucket: str) -> Path:
    etc = root / "etc"
    (etc / "catalog").mkdir(parents=True)
    plugins = root / "plugin"
    plugins.mkdir()
    (plugins / "hive").symlink_to(server / "plugin" / "hive")  # one plugin: a faster start
    (etc / "node.properties").write_text(
        f"node.environment=test\nnode.id={uuid.uuid4()}\nnode.data-dir={root / 'data'}\n"
    )
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                "-Xmx2G",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                "-XX:TieredStopAtLevel=1",
                "-Djdk.attach.allowAttachSelf=true",
                "-Duser.timezone=UTC",
            ]
        )
        + "\n"
    )
    (etc / "config.properties").write_text(
        "coordinator=true\n"
        "node-scheduler.include-coordinator=true\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\n"
        f"plugin.dir={plugins}\n"
        "query.max-memory=1GB\n"
        "query.max-memory-per-node=512MB\n"
    )
    # The shipped catalog, pointed at this test's bucket instead of meterstream-lake.
    catalog = (DEPLOY / "catalog" / "lake.properties").read_text()
    (etc / "catalog" / "lake.properties").write_text(catalog.replace(DEFAULT_BUCKET, bucket))
    return etc


@pytest.fixture(scope="module")
def trino_server(
    tmp_path_factory: pytest.TempPathFactory, s3_service: S3Endpoint
) -> Iterator[tuple[Trino, str]]:
    tarball, java_home = _tarball(), _java_home()
    if tarball is None:
        pytest.skip(f"no trino-server-*.tar.gz cached in {CACHE}")
    if java_home is None:
        pytest.skip("no Java 25 JDK under /usr/lib/jvm (set TRINO_JAVA_HOME)")
    root = tmp_path_factory.mktemp("trino")
    with tarfile.open(tarball) as archive:
        archive.extractall(root, filter="tar")
    server = next(p for p in root.iterdir() if p.name.startswith("trino-server-"))
    bucket = f"test-trino-{uuid.uuid4().hex[:10]}"
    client = _client(s3_service)
    client.make_bucket(bucket)
    port = _free_port()
    etc = _etc(root, server, port, bucket)
    env = {
        **os.environ,
        "JAVA_HOME": str(java_home),
        "PATH": f"{java_home / 'bin'}:{os.environ['PATH']}",
        "METERSTREAM_S3_ENDPOINT": s3_service.endpoint,
        "METERSTREAM_S3_ACCESS_KEY": s3_service.access_key,
        "METERSTREAM_S3_SECRET_KEY": s3_service.secret_key,
    }
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(server / "bin" / "launcher"),
            "run",
            f"--etc-dir={etc}",
            f"--data-dir={root / 'data'}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    trino = Trino(f"http://127.0.0.1:{port}")
    try:
        _wait_started(trino, process, root / "server.log")
        yield trino, bucket
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        for obj in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, obj.object_name or "")
        client.remove_bucket(bucket)
        shutil.rmtree(server, ignore_errors=True)


def _client(s3: S3Endpoint) -> Minio:
    return Minio(
        s3.host,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.endpoint.startswith("https://"),
    )


def _wait_started(trino: Trino, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"trino exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{trino.url}/v1/info", timeout=2) as response:
                started = not json.load(response).get("starting", True)
        except OSError:
            started = False
        # "Started" comes before the coordinator's own node is announced as active; until then
        # every query fails with "No nodes available to run query".
        if started and _runs_queries(trino):
            return
        time.sleep(1)
    raise AssertionError(f"trino did not start in {START_TIMEOUT:.0f} s: {log.read_text()[-3000:]}")


def _runs_queries(trino: Trino) -> bool:
    try:
        rows = trino.query("SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")
    except (AssertionError, OSError):
        return False
    return bool(rows and rows[0][0])


def _statements(path: Path, bucket: str) -> list[str]:
    text = path.read_text().replace(DEFAULT_BUCKET, bucket)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def test_init_sql_and_views_on_trino(trino_server: tuple[Trino, str], s3_service) -> None:
    trino, bucket = trino_server
    client = _client(s3_service)
    start = datetime(2024, 3, 4, 22, tzinfo=UTC)
    rows = [
        reading_row(
            "home-1", start + i * timedelta(seconds=30), 100.0 + i % 5, partition=0, offset=i
        )
        for i in range(4 * 120)  # 22:00 to 02:00: two days, four hours
    ]
    first_hour = [r for r in rows if r["ts"].hour == 22]
    put_lake(client, bucket, [r for r in rows if r["ts"].hour != 22])
    put_lake(client, bucket, first_hour, drop=("signal_strength",))  # an older file
    put_file(  # a redelivery at a later offset, which must lose
        client, bucket, [reading_row("home-1", start, 99_999.0, partition=0, offset=10_000)]
    )

    for statement in _statements(DEPLOY / "init.sql", bucket):
        trino.query(statement)
    assert trino.query("SELECT count(*) FROM lake.meterstream.readings") == [[len(rows) + 1]]
    assert trino.query(
        'SELECT "date", "hour", count(*) FROM lake.meterstream.readings GROUP BY 1, 2 ORDER BY 1, 2'
    ) == [
        ["2024-03-04", 22, 121],
        ["2024-03-04", 23, 120],
        ["2024-03-05", 0, 120],
        ["2024-03-05", 1, 120],
    ]
    assert trino.query(
        "SELECT count(signal_strength), count(*) FROM lake.meterstream.readings WHERE hour = 22"
    ) == [[0, 121]]

    # init.sql is idempotent, and the partition sync picks up an hour added later.
    later = [
        reading_row(
            "home-1",
            start + timedelta(hours=4, seconds=30 * i),
            100.0,
            partition=0,
            offset=20_000 + i,
        )
        for i in range(10)
    ]
    put_lake(client, bucket, later)
    for statement in _statements(DEPLOY / "init.sql", bucket):
        trino.query(statement)
    assert trino.query("SELECT count(*) FROM lake.meterstream.readings") == [[len(rows) + 11]]

    for statement in _statements(DEPLOY / "views.sql", bucket):
        trino.query(statement)
    assert trino.query("SELECT count(*) FROM lake.meterstream.readings_dedup") == [[len(rows) + 10]]
    assert trino.query(
        "SELECT power_w FROM lake.meterstream.readings_dedup WHERE ts = TIMESTAMP '2024-03-04 22:00:00'"
    ) == [[100.0]]

    # Trino's energy views agree with DuckDB's on the same files.
    got = {
        (m, d): kwh
        for m, d, kwh in trino.query(
            "SELECT meter_id, CAST(day AS varchar), kwh FROM lake.meterstream.daily_energy"
        )
    }
    settings = lake_settings(
        s3_service.endpoint, s3_service.access_key, s3_service.secret_key, bucket
    )
    con = open_lake(settings)
    try:
        want = {
            (r["meter_id"], r["day"].isoformat()): r["kwh"]
            for r in run_query(con, "SELECT * FROM daily_energy").to_pylist()
        }
    finally:
        con.close()
    assert got.keys() == want.keys()
    for key, kwh in want.items():
        assert got[key] == pytest.approx(kwh, rel=1e-9), key
