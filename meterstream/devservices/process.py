"""Start, watch and stop local service processes (the no-Docker path of the dev services).

Every service runs in its own session (process group), so stopping it also stops its
children, and a crashed test run can be cleaned up by killing the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meterstream.errors import ServiceStartError


@dataclass(frozen=True)
class RunningService:
    """A started service: what to stop, where it logs, and the endpoints it offers."""

    name: str
    pid: int
    log_path: Path
    data_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    # Some services (PostgreSQL) are stopped with their own tool rather than a signal.
    stop_command: tuple[str, ...] = ()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join(content[-lines:]) or "(log is empty)"


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout and stderr going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            list(argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def run_checked(argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> str:
    """Run a short set-up command; on failure raise ServiceStartError with its output."""
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise ServiceStartError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv[:3])} ...\n"
            + "\n".join(output)
        )
    return result.stdout


def wait_until_ready(
    name: str,
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes] | None,
    log_path: Path,
    timeout_s: float,
    hint: str = "",
) -> float:
    """Poll ``ready`` until it is true; fail early if the process exits. Returns seconds waited."""
    started = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise ServiceStartError(
                f"{name} exited with code {process.returncode} while starting.{hint}\n"
                f"--- last lines of {log_path} ---\n{log_tail(log_path)}"
            )
        with contextlib.suppress(Exception):
            if ready():
                return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise ServiceStartError(
                f"{name} did not become ready within {timeout_s:.0f} s.{hint}\n"
                f"--- last lines of {log_path} ---\n{log_tail(log_path)}"
            )
        time.sleep(0.2)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(pid: int, *, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL whatever is left after the timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    # A child of this process stays a zombie (and "alive" to kill -0) until it is waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
