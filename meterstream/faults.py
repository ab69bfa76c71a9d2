"""Named fault points: deterministic crashes for recovery tests.

A test sets ``METERSTREAM_FAULT=after_state_write`` (or ``name@N``: the N-th time the point is
reached) and the process SIGKILLs itself exactly there, so every crash phase the design has to
survive is exercised on purpose instead of hoping a random kill lands in it. ``name@N:raise``
raises :class:`InjectedFault` there instead (an error the code must handle, not a kill). In
production the setting is empty and a fault point costs one set lookup.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

_armed: dict[str, int] = {}
_reached: dict[str, int] = {}
_raising: set[str] = set()


class InjectedFault(RuntimeError):
    """Raised at a fault point armed with ``:raise``."""


def arm(spec: str) -> None:
    """Arm the fault points in ``spec``: ``name`` or ``name@N``, comma-separated."""
    _armed.clear()
    _reached.clear()
    _raising.clear()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        point, _, mode = part.partition(":")
        name, _, count = point.partition("@")
        _armed[name] = int(count) if count else 1
        if mode == "raise":
            _raising.add(name)


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL (or raise) if ``name`` is armed and reached that often."""
    if name not in _armed:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= _armed[name] and name in _raising:
        del _armed[name]  # once
        raise InjectedFault(f"fault point {name} reached ({_reached[name]})")
    if _reached[name] >= _armed[name]:
        log.warning("fault point %s reached (%d): killing the process", name, _reached[name])
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
