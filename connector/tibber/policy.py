"""The connector's manners towards Tibber, as pure objects on an injectable clock.

Tibber allows about 2 open sockets and 20 new sockets an hour per token and asks clients to keep
one socket open for as long as possible. Three objects keep us inside that:

* :class:`Backoff` spaces reconnect attempts (exponential, jittered, capped, never below the
  minimum) and is reset only after a connection stayed healthy for a while;
* :class:`SocketBudget` is the hard limit every new socket must pass, whatever its cause
  (a crash loop included: its log is persisted);
* :class:`HomeWatchdog` decides when a silent home is resubscribed on the same socket, backing off
  per home so a Pulse outage costs subscriptions, not sockets.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from meterstream.backoff import Backoff

__all__ = ["HOUR_S", "Backoff", "HomeWatchdog", "SocketBudget"]

HOUR_S = 3600.0


class SocketBudget:
    """At most ``per_hour`` new sockets in any sliding hour, remembered across restarts.

    >>> budget = SocketBudget(per_hour=2)
    >>> budget.wait_time(now=0.0), budget.record(0.0), budget.record(10.0)
    (0.0, None, None)
    >>> budget.wait_time(now=20.0)
    3580.0
    """

    def __init__(
        self, per_hour: int, state_file: Path | None = None, wall_offset: float = 0.0
    ) -> None:
        self.per_hour = per_hour
        self._opens: deque[float] = deque()
        self._state_file = state_file
        # The log is kept in wall-clock seconds (monotonic clocks restart with the process).
        self._wall_offset = wall_offset
        self._load()

    def _load(self) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        try:
            stored = json.loads(self._state_file.read_text())
            self._opens.extend(float(t) - self._wall_offset for t in stored.get("opened_at", []))
        except (OSError, ValueError, TypeError):
            self._opens.clear()  # a corrupt log must not stop the connector; start afresh

    def _save(self) -> None:
        if self._state_file is None:
            return
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {"opened_at": [t + self._wall_offset for t in self._opens]}
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self._state_file)

    def _expire(self, now: float) -> None:
        while self._opens and self._opens[0] <= now - HOUR_S:
            self._opens.popleft()

    def wait_time(self, now: float) -> float:
        """Seconds until a new socket is allowed (0 when allowed now)."""
        self._expire(now)
        if len(self._opens) < self.per_hour:
            return 0.0
        return self._opens[0] + HOUR_S - now

    def record(self, now: float) -> None:
        self._expire(now)
        self._opens.append(now)
        self._save()

    @property
    def used(self) -> int:
        return len(self._opens)


@dataclass
class _HomeState:
    last_activity: float
    silent_rounds: int = 0


@dataclass
class HomeWatchdog:
    """Per-home staleness judged by arrival time; silent homes are resubscribed with backoff.

    The first resubscription comes ``stale_after`` seconds after the last data; while the home
    stays silent each next one waits twice as long, up to ``backoff_max``. Data resets it.

    >>> dog = HomeWatchdog(stale_after=60, backoff_max=600)
    >>> dog.track(["home"], now=0)
    >>> dog.due(now=59), dog.due(now=60)
    ([], ['home'])
    >>> dog.resubscribed("home", now=60); dog.due(now=179), dog.due(now=180)
    ([], ['home'])
    """

    stale_after: float
    backoff_max: float
    _homes: dict[str, _HomeState] = field(default_factory=dict)

    def track(self, homes: Iterable[str], now: float) -> None:
        self._homes = {home: _HomeState(last_activity=now) for home in homes}

    def data(self, home: str, now: float) -> None:
        state = self._homes.get(home)
        if state is not None:
            state.last_activity = now
            state.silent_rounds = 0

    def _wait(self, state: _HomeState) -> float:
        return min(self.backoff_max, self.stale_after * 2.0**state.silent_rounds)

    def due(self, now: float) -> list[str]:
        """Homes whose silence has lasted long enough for a resubscription."""
        return [h for h, s in self._homes.items() if now - s.last_activity >= self._wait(s)]

    def resubscribed(self, home: str, now: float) -> None:
        state = self._homes[home]
        state.last_activity = now
        state.silent_rounds += 1

    def fresh(self, now: float) -> bool:
        """True when every tracked home sent data within ``stale_after`` (feeds /readyz)."""
        return bool(self._homes) and all(
            now - s.last_activity < self.stale_after and s.silent_rounds == 0
            for s in self._homes.values()
        )

    def age(self, home: str, now: float) -> float | None:
        state = self._homes.get(home)
        return None if state is None else now - state.last_activity
