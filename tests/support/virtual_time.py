"""An asyncio event loop with a virtual clock, for tests of timing logic.

Whenever no callback is ready, the loop's clock jumps to the next timer instead of sleeping, so
an hour of backoff, watchdog rounds and timeouts runs in milliseconds, in the same order every
time. Only in-memory I/O is allowed: a task waiting on a real socket would never be woken.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)  # the loop's self-pipe only; never block
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual-time loop: every task waits and no timer is set (deadlock)")
        self._virtual_loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def run_virtual(coro: Coroutine[Any, Any, T], start: float = 0.0) -> tuple[T, VirtualTimeLoop]:
    """Run ``coro`` to completion in virtual time; returns its result and the loop (for .time())."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(coro), loop
    finally:
        loop.close()
