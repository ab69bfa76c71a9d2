"""Time as the connector sees it, injectable so reconnect and watchdog logic run on a fake clock.

``monotonic`` measures intervals (backoff, staleness: arrival time, never payload time) and
must agree with the event loop's clock, since timeouts run on the loop; ``wall`` stamps
``received_at``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """The running event loop's clock: real time normally, virtual time under a test loop.

    Tests run the connector's timing logic on an event loop whose clock jumps ahead whenever
    every task is waiting (``tests/support/virtual_time.py``), so an hour of backoff and
    watchdog decisions takes milliseconds and happens the same way every time.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wall_offset: float | None = None) -> None:
        self._loop = loop
        self._wall_offset = time.time() - loop.time() if wall_offset is None else wall_offset

    def monotonic(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return self._wall_offset + self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
