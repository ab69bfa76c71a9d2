"""Start the demo's children, notice when one dies, and stop them all without leaving orphans.

Each child runs in its own session (process group) with its output in a log file. Terminal
signals (Ctrl-C) therefore reach the demo only, and the demo stops the children itself, in
reverse start order: the connector first, so the worker sees its last readings, and the sinks
last, so they write what came before. A child gets SIGTERM (every meterstream process flushes and
exits 0 on it), then SIGKILL for its whole group after its timeout. Whatever is still alive when
the demo exits, for any reason, is killed by an atexit handler; the launcher in
:mod:`meterstream.demo.child` covers the demo being killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from meterstream.demo.plan import ChildSpec, child_argv
from meterstream.devservices.process import spawn

_POLL_S = 0.1


@dataclass
class Child:
    """A started child process."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    expected_exit: bool = False  # set when the demo stops it, or when it may end by itself
    reported: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def state(self) -> str:
        code = self.returncode
        if code is None:
            return "running"
        return "finished" if code == 0 else f"exited {code}"


@dataclass(frozen=True)
class StopResult:
    name: str
    returncode: int | None
    killed: bool
    seconds: float


class Supervisor:
    """Owns the children of one demo run."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self.children: list[Child] = []
        self.force = False  # a second Ctrl-C: stop waiting for clean exits
        atexit.register(self.kill_all)

    def start(self, spec: ChildSpec) -> Child:
        env = {**self._env, "METERSTREAM_METRICS_PORT": str(spec.metrics_port)}
        process = spawn(child_argv(spec), log_path=spec.log_path, env=env)
        child = Child(spec, process)
        self.children.append(child)
        return child

    def get(self, name: str) -> Child | None:
        return next((c for c in self.children if c.spec.name == name), None)

    def unexpected_exits(self) -> list[Child]:
        """Children that ended although nobody asked them to (each reported once)."""
        found = []
        for child in self.children:
            if child.returncode is not None and not child.expected_exit and not child.reported:
                child.reported = True
                found.append(child)
        return found

    def stop_all(self, progress: Callable[[str], None]) -> list[StopResult]:
        """SIGTERM the children in reverse start order, each with its timeout, then SIGKILL."""
        results = []
        for child in reversed(self.children):
            child.expected_exit = True
            results.append(self._stop(child, progress))
        return results

    def _stop(self, child: Child, progress: Callable[[str], None]) -> StopResult:
        started = time.monotonic()
        if child.returncode is not None:
            _kill_group(child.pid, signal.SIGKILL)  # anything it left behind in its group
            return StopResult(child.spec.name, child.returncode, False, 0.0)
        progress(f"stopping {child.spec.name} (pid {child.pid}) ...")
        _kill_group(child.pid, signal.SIGTERM)
        deadline = started + child.spec.stop_timeout_s
        while child.returncode is None and time.monotonic() < deadline and not self.force:
            time.sleep(_POLL_S)
        killed = child.returncode is None
        _kill_group(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=5)
        return StopResult(child.spec.name, child.returncode, killed, time.monotonic() - started)

    def kill_all(self) -> None:
        """Last resort (atexit): SIGKILL every child's process group that is still there."""
        for child in self.children:
            _kill_group(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                child.process.wait(timeout=2)


def _kill_group(pid: int, sig: signal.Signals) -> None:
    # The child leads its own group (spawn starts a new session), so its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
