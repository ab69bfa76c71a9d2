"""Launcher of the demo's children: ``python -m meterstream.demo.child <parent pid> <args...>``.

It asks Linux to send the process SIGTERM when the demo dies (``PR_SET_PDEATHSIG``), then
replaces itself with ``python -m meterstream.cli <args...>`` (same pid, and the setting survives
exec). The demo's atexit handler and signal handling stop children on every ordinary exit; this
covers the one they cannot: the demo killed with SIGKILL. Every child flushes and exits 0 on
SIGTERM, so even then nothing is lost. Elsewhere than Linux it only execs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    # The demo may have died before prctl took effect: then nobody would send the signal.
    if os.getppid() != parent_pid:
        sys.exit(1)


def main(argv: list[str]) -> None:
    parent_pid, *args = argv
    _die_with_parent(int(parent_pid))
    # Replacing the launcher is the point: same pid, same process group, no extra process.
    os.execv(sys.executable, [sys.executable, "-m", "meterstream.cli", *args])  # noqa: S606


if __name__ == "__main__":
    main(sys.argv[1:])
