"""A throwaway PostgreSQL cluster made with initdb, run as a local process.

PostgreSQL refuses to run as root, and CI runs as root: then initdb and the server run as the
``postgres`` user that Debian's package creates (through ``runuser``), in a directory that user
owns. fsync is off: this server holds test and demo data only.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from meterstream.devservices.process import (
    RunningService,
    free_port,
    run_checked,
    spawn,
    wait_until_ready,
)
from meterstream.devservices.tools import postgres_bindir, require

SUPERUSER = "meterstream"
DATABASE = "meterstream"


def _as_root() -> bool:
    return os.geteuid() == 0


def _owner_prefix() -> list[str]:
    if not _as_root():
        return []
    runuser = require("runuser", "it ships with util-linux")
    return [runuser, "-u", "postgres", "--"]


def reachable_data_dir(preferred: Path, *, persistent: bool) -> Path:
    """A data directory the server's user can reach.

    As root the server runs as ``postgres``, which cannot enter root's 0700 directories (a
    pytest tmp dir, /root): then the cluster lives in a directory of its own under /var/tmp
    (``persistent``: the same one every time for ``preferred``) or a fresh temp dir.
    """
    if not _as_root():
        return preferred
    if persistent:
        digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:10]
        base = Path("/var/tmp") / f"meterstream-dev-postgres-{digest}"  # noqa: S108 - 1777 dir postgres can enter
        base.mkdir(mode=0o700, exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="meterstream-pg-"))
    shutil.chown(base, "postgres", "postgres")
    return base


def start_postgres(
    data_dir: Path,
    *,
    port: int | None = None,
    password: str | None = None,
    timeout_s: float = 60.0,
) -> RunningService:
    """Create (if new) and start a cluster in ``data_dir``; the superuser gets ``password``."""
    bindir = postgres_bindir()
    port = port or free_port()
    password = password or secrets.token_urlsafe(18)
    data_dir.mkdir(parents=True, exist_ok=True)
    cluster = data_dir / "cluster"
    log_path = data_dir / "postgres.log"
    prefix = _owner_prefix()
    if _as_root():
        shutil.chown(data_dir, "postgres", "postgres")
    if not (cluster / "PG_VERSION").exists():
        pwfile = data_dir / "pwfile"
        pwfile.write_text(password + "\n")
        if _as_root():
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        try:
            run_checked(
                [
                    *prefix,
                    str(bindir / "initdb"),
                    "-D",
                    str(cluster),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
    log_path.touch()
    if _as_root():
        shutil.chown(log_path, "postgres", "postgres")
    process = spawn(
        [
            *prefix,
            str(bindir / "postgres"),
            "-D",
            str(cluster),
            "-p",
            str(port),
            "-k",
            str(data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=100",
            "-c",
            "shared_buffers=128MB",
        ],
        log_path=log_path,
    )
    pg_isready = bindir / "pg_isready"
    wait_until_ready(
        "PostgreSQL",
        lambda: _ready(pg_isready, port),
        process=process,
        log_path=log_path,
        timeout_s=timeout_s,
    )
    _create_database(bindir, data_dir, port)
    dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    return RunningService(
        name="postgres",
        pid=process.pid,
        log_path=log_path,
        data_dir=data_dir,
        env={"METERSTREAM_POSTGRES_DSN": dsn, "METERSTREAM_POSTGRES_PASSWORD": password},
        stop_command=(*prefix, str(bindir / "pg_ctl"), "stop", "-D", str(cluster), "-m", "fast"),
    )


def _ready(pg_isready: Path, port: int) -> bool:
    import subprocess

    result = subprocess.run(
        [str(pg_isready), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
    )
    return result.returncode == 0


def _create_database(bindir: Path, socket_dir: Path, port: int) -> None:
    # Over the unix socket, where initdb set trust auth for local connections.
    import subprocess

    check = subprocess.run(
        [
            *_owner_prefix(),
            str(bindir / "psql"),
            "-h",
            str(socket_dir),
            "-p",
            str(port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",  # noqa: S608 - a constant,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.stdout.strip() == "1":
        return
    run_checked(
        [
            *_owner_prefix(),
            str(bindir / "createdb"),
            "-h",
            str(socket_dir),
            "-p",
            str(port),
            "-U",
            SUPERUSER,
            DATABASE,
        ],
        what="createdb",
    )
