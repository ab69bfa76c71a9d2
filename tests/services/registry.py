"""Processes and containers the test session started, stopped at the end (and at exit).

Every local service runs in its own process group; the atexit hook kills the groups even when
pytest dies half-way, so a crashed run leaves no broker holding ports or memory.
"""

from __future__ import annotations

import atexit
import contextlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from meterstream.devservices.process import RunningService, stop_process_group


@dataclass
class StartedServices:
    services: list[RunningService] = field(default_factory=list)
    containers: list[object] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # human-readable lines for the test log
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def add_process(self, service: RunningService, seconds: float, what: str) -> None:
        self.services.append(service)
        self.started.append(
            f"{service.name}: local process pid {service.pid} ({what}) ready in {seconds:.1f} s, "
            f"log {service.log_path}"
        )

    def add_container(self, container: object, line: str) -> None:
        self.containers.append(container)
        self.started.append(line)

    def add_cleanup(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            if service.stop_command:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        list(service.stop_command), capture_output=True, timeout=20, check=False
                    )
            stop_process_group(service.pid)
        self.services.clear()
        for container in reversed(self.containers):
            with contextlib.suppress(Exception):
                container.stop()  # type: ignore[attr-defined]
        self.containers.clear()
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self._cleanups.clear()


STARTED = StartedServices()
atexit.register(STARTED.stop_all)
