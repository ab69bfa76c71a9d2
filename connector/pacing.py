"""Pace event time against the wall clock: real time, N times real time, or as fast as possible."""

from __future__ import annotations

from connector.clock import Clock
from connector.simulator.speed import parse_speed

__all__ = ["Pacer", "parse_speed"]


class Pacer:
    """Sleeps so that event time ``ts_us`` is reached at (first event + elapsed * speed)."""

    def __init__(self, clock: Clock, speed: float | None) -> None:
        self._clock = clock
        self._speed = speed
        self._origin: tuple[int, float] | None = None

    async def wait_for(self, ts_us: int) -> None:
        if self._speed is None:
            return
        now = self._clock.monotonic()
        if self._origin is None:
            self._origin = (ts_us, now)
            return
        first_ts, started = self._origin
        due = started + (ts_us - first_ts) / 1e6 / self._speed
        if due > now:
            await self._clock.sleep(due - now)
