"""`meterstream dev services up|down|status`: Kafka, PostgreSQL and MinIO as local processes.

The services keep running after the command returns. Their endpoints are written as
``METERSTREAM_*=...`` lines to ``.meterstream/dev.env``, which every other meterstream command
reads (below the process environment and ``.env``), so
``meterstream dev services up && meterstream topics create`` just works.
Data, logs and generated passwords live under ``.meterstream/dev/`` and survive ``down``;
``down --wipe`` removes them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from meterstream.devservices.kafka import start_kafka
from meterstream.devservices.minio import start_minio
from meterstream.devservices.postgres import reachable_data_dir, start_postgres
from meterstream.devservices.process import (
    RunningService,
    pid_alive,
    port_open,
    stop_process_group,
)
from meterstream.devservices.registry import start_registry

log = logging.getLogger(__name__)

SERVICES = ("kafka", "postgres", "minio", "registry")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    log_path: str | None


class DevStack:
    """The local services of one working directory (``root`` is usually ``.meterstream``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "dev"
        self.state_file = self.dir / "state.json"
        self.secrets_file = self.dir / "secrets.json"
        self.env_file = root / "dev.env"

    # -- state ---------------------------------------------------------------------------
    def _load_state(self) -> dict[str, dict[str, Any]]:
        if not self.state_file.exists():
            return {}
        loaded: dict[str, dict[str, Any]] = json.loads(self.state_file.read_text())
        return loaded

    def _save_state(self, state: dict[str, dict[str, Any]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2, default=str))

    def _secret(self, name: str) -> str:
        # Generated once and kept: initdb sets the password only when the cluster is created.
        self.dir.mkdir(parents=True, exist_ok=True)
        stored: dict[str, str] = (
            json.loads(self.secrets_file.read_text()) if self.secrets_file.exists() else {}
        )
        if name not in stored:
            stored[name] = secrets.token_urlsafe(18)
            self.secrets_file.write_text(json.dumps(stored))
            self.secrets_file.chmod(0o600)
        return stored[name]

    # -- commands ------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        state = self._load_state()
        result = []
        for name in SERVICES:
            entry = state.get(name)
            pid = int(entry["pid"]) if entry else None
            result.append(
                ServiceStatus(
                    name=name,
                    running=pid is not None and pid_alive(pid),
                    pid=pid,
                    log_path=str(entry["log_path"]) if entry else None,
                )
            )
        return result

    def up(
        self, progress: Callable[[str], None] = print, *, with_registry: bool = False
    ) -> dict[str, str]:
        """Start whatever is not running; return the endpoints (also written to dev.env).

        The schema registry is optional: without it, meterstream uses Avro single-object encoding.
        """
        state = self._load_state()
        wanted = [n for n in SERVICES if n != "registry" or with_registry or n in state]
        starters: dict[str, Callable[[], RunningService]] = {
            "kafka": lambda: start_kafka(self.dir / "kafka", port=_reuse(state, "kafka")),
            "postgres": lambda: start_postgres(
                reachable_data_dir(self.dir / "postgres", persistent=True),
                port=_reuse(state, "postgres"),
                password=self._secret("postgres_password"),
            ),
            "minio": lambda: start_minio(
                self.dir / "minio",
                port=_reuse(state, "minio"),
                secret_key=self._secret("minio_secret_key"),
            ),
            "registry": lambda: start_registry(
                self.dir / "registry", port=_reuse(state, "registry")
            ),
        }
        for status in self.status():
            if status.name not in wanted:
                continue
            if status.running:
                progress(f"{status.name}: already running (pid {status.pid})")
                continue
            progress(f"{status.name}: starting ...")
            service = starters[status.name]()
            state[status.name] = {**asdict(service), "port": _port_of(service)}
            self._save_state(state)
            progress(f"{status.name}: ready (pid {service.pid}, log {service.log_path})")
        endpoints: dict[str, str] = {}
        for name in wanted:
            endpoints.update(state[name]["env"])
        self._write_env(endpoints)
        return endpoints

    def down(self, *, wipe: bool = False, progress: Callable[[str], None] = print) -> None:
        state = self._load_state()
        for name in reversed(SERVICES):
            entry = state.pop(name, None)
            if not entry:
                continue
            pid = int(entry["pid"])
            stop_command = [str(part) for part in entry.get("stop_command") or []]
            if pid_alive(pid):
                if stop_command:
                    with contextlib.suppress(OSError):
                        subprocess.run(stop_command, capture_output=True, check=False, timeout=30)
                stop_process_group(pid)
                progress(f"{name}: stopped (pid {pid})")
            else:
                progress(f"{name}: was not running")
            if wipe:
                shutil.rmtree(Path(str(entry["data_dir"])), ignore_errors=True)
        self._save_state(state)
        self.env_file.unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(self.dir, ignore_errors=True)
            progress(f"removed {self.dir}")

    def _write_env(self, endpoints: dict[str, str]) -> None:
        lines = ["# Written by `meterstream dev services up`; removed by `down`."]
        lines += [f"{key}={value}" for key, value in sorted(endpoints.items())]
        # State of processes run by hand lives next to the services, not in /var/lib.
        state = self.root.resolve()
        lines += [
            f"METERSTREAM_CONNECTOR_DATA_DIR={state / 'connector'}",
            f"METERSTREAM_WORKER_DATA_DIR={state / 'worker'}",
        ]
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)


def _port_of(service: RunningService) -> int | None:
    for value in service.env.values():
        tail = value.rsplit(":", 1)[-1].split("/", 1)[0]
        if tail.isdigit():
            return int(tail)
    return None


def _reuse(state: dict[str, dict[str, Any]], name: str) -> int | None:
    """The port a service had last time, if it is still free (keeps dev.env stable)."""
    entry = state.get(name) or {}
    port = entry.get("port")
    if isinstance(port, int) and not port_open(port):
        return port
    return None
