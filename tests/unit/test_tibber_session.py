"""The Tibber session's manners, on virtual time with an in-memory API.

An hour of outages runs in milliseconds and the same way every time, so the socket budget,
backoff bounds and watchdog timing can be counted exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connector.clock import LoopClock
from connector.metrics import ConnectorMetrics
from connector.sources.errors import FatalSourceError, TokenRejectedError
from connector.tibber.api import Discovery, Home, LiveSocket
from connector.tibber.errors import AuthRejected, RateLimited, SocketLost, SubscriptionEnded
from connector.tibber.guard import RejectedTokenGuard
from connector.tibber.policy import SocketBudget
from connector.tibber.session import TibberSession
from meterstream.settings import TibberSettings
from tests.support.virtual_time import VirtualTimeLoop

HOMES = (Home("home-a", "A", "Europe/Oslo", True), Home("home-b", "B", "Europe/Oslo", True))


@dataclass
class ScriptedApi:
    """Tibber in memory. Each socket follows ``plan``: a function of the socket number."""

    loop: asyncio.AbstractEventLoop
    plan: Any = None  # (socket_no) -> "ok" | "drop_after:<s>" | "4403" | "4429"
    valid_tokens: set[str] = field(default_factory=lambda: {"good-token"})
    silent_after: float | None = None  # no data after this virtual time (socket stays up)
    errors_for: dict[str, int] = field(default_factory=dict)  # home -> times to end with errors
    interval: float = 2.0
    sockets: list[float] = field(default_factory=list)
    subscriptions: list[tuple[float, str]] = field(default_factory=list)
    discoveries: int = 0

    async def discover(self, token: str) -> Discovery:
        self.discoveries += 1
        if token not in self.valid_tokens:
            raise AuthRejected("Tibber rejected the token (UNAUTHENTICATED)")
        return Discovery("wss://fake/subscriptions", HOMES)

    @asynccontextmanager
    async def connect(self, url: str, token: str) -> AsyncIterator[LiveSocket]:
        number = len(self.sockets)
        self.sockets.append(self.loop.time())
        action = self.plan(number) if self.plan else "ok"
        if action == "4403":
            raise AuthRejected("Tibber rejected the token (socket connect, code 4403)")
        if action == "4429":
            raise RateLimited("Tibber is rate limiting this client (code 4429)")
        socket = _Socket(self)
        if action.startswith("drop_after:"):
            lifetime = float(action.split(":")[1])
            task = asyncio.current_task()
            assert task is not None
            handle = self.loop.call_later(lifetime, socket.drop)
            try:
                yield socket
            finally:
                handle.cancel()
        else:
            yield socket


class _Socket:
    def __init__(self, api: ScriptedApi) -> None:
        self.api = api
        self.dropped = asyncio.Event()

    def drop(self) -> None:
        self.dropped.set()

    async def subscribe(self, home_id: str) -> AsyncIterator[Mapping[str, Any]]:
        api = self.api
        api.subscriptions.append((api.loop.time(), home_id))
        if api.errors_for.get(home_id, 0) > 0:
            api.errors_for[home_id] -= 1
            raise SubscriptionEnded(f"home {home_id}: server sent errors: unable to start stream")
        while True:
            sleeper = asyncio.ensure_future(asyncio.sleep(api.interval))
            dropper = asyncio.ensure_future(self.dropped.wait())
            try:
                done, _ = await asyncio.wait(
                    {sleeper, dropper}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                sleeper.cancel()
                dropper.cancel()
            if dropper in done:
                raise SocketLost("socket failed: code 1006", close_code=1006)
            if api.silent_after is None or api.loop.time() < api.silent_after:
                yield {"timestamp": "2026-01-05T07:00:00+01:00", "power": 100.0}


def _settings(**overrides: Any) -> TibberSettings:
    values: dict[str, Any] = {
        "token": SecretStr("good-token"),
        "reconnect_min": 5,
        "reconnect_max": 300,
    }
    values.update(overrides)
    return TibberSettings(**values)


def _run(api_factory, settings: TibberSettings, tmp_path: Path, duration: float, seed: int = 7):
    loop = VirtualTimeLoop()
    api = api_factory(loop)
    measurements: list[tuple[float, str]] = []
    metrics = ConnectorMetrics()
    session = TibberSession(
        settings,
        api,
        LoopClock(loop, wall_offset=1_800_000_000.0),
        guard=RejectedTokenGuard(tmp_path),
        budget=SocketBudget(
            settings.sockets_per_hour, tmp_path / "sockets.json", wall_offset=1_800_000_000.0
        ),
        metrics=metrics,
        on_measurement=lambda home, _m: measurements.append((loop.time(), home)),
        rng=random.Random(seed),
    )

    async def bounded() -> BaseException | None:
        try:
            await asyncio.wait_for(session.run(), duration)
        except TimeoutError:
            return None
        except BaseException as exc:
            return exc
        return None

    try:
        error = loop.run_until_complete(bounded())
    finally:
        loop.close()
    return api, session, measurements, metrics, error


def test_an_hour_of_pulse_silence_costs_one_socket(tmp_path: Path) -> None:
    """The data stops but the socket stays healthy: resubscribe with backoff, never reconnect."""
    api, session, _measurements, metrics, error = _run(
        lambda loop: ScriptedApi(loop, silent_after=60.0), _settings(), tmp_path, duration=3660.0
    )
    assert error is None
    assert len(api.sockets) == 1
    resubscribes = [t for t, home in api.subscriptions if home == "home-a"][1:]
    # 60 s of data, then silence: resubscriptions 60, 120, 240, 480 s apart, then every 600 s.
    gaps = [b - a for a, b in zip([60.0, *resubscribes], resubscribes, strict=False)]
    assert 6 <= len(resubscribes) <= 10, resubscribes
    assert all(gap >= 60.0 - 1e-6 for gap in gaps)
    assert max(gaps) <= 600.0 + 5.0 + 1e-6  # the cap plus one watchdog interval
    assert not session.ready()
    assert metrics.resubscriptions.labels("home-a", "stale")._value.get() == len(resubscribes)


def test_the_watchdog_reacts_within_stale_after_plus_one_check(tmp_path: Path) -> None:
    api, *_ = _run(
        lambda loop: ScriptedApi(loop, silent_after=100.0),
        _settings(stale_after=30, watchdog_interval=5),
        tmp_path,
        duration=200.0,
    )
    first_resubscribe = next(t for t, home in api.subscriptions[2:] if home == "home-a")
    last_data = 100.0 - 100.0 % 2.0  # the last frame before the silence (2 s cadence)
    assert last_data + 30 <= first_resubscribe <= last_data + 30 + 5 + 1e-6


def test_a_socket_that_keeps_dropping_stays_within_the_budget_and_backoff_bounds(
    tmp_path: Path,
) -> None:
    settings = _settings(sockets_per_hour=10, reconnect_min=5, reconnect_max=120)
    api, session, _, metrics, error = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: "drop_after:1"),
        settings,
        tmp_path,
        duration=3600.0,
    )
    assert error is None
    opened = api.sockets
    assert len(opened) <= 10
    # in any sliding hour at most 10; the first ones back off with jitter, never below the minimum
    waits = [b - a - 1.0 for a, b in itertools.pairwise(opened)]
    assert all(w >= 5.0 - 1e-6 for w in waits), waits
    assert len({round(w, 3) for w in waits[:5]}) == len(waits[:5])  # jitter: no two alike
    assert metrics.reconnects.labels("dropped")._value.get() == len(opened) - 1
    assert session.sockets_opened == len(opened)


def test_the_budget_survives_a_restart(tmp_path: Path) -> None:
    settings = _settings(sockets_per_hour=3, reconnect_min=1, reconnect_max=2)
    first, *_ = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: "drop_after:1"), settings, tmp_path, 600.0
    )
    assert len(first.sockets) == 3
    # A restart (same data dir) inside the same hour may not open more sockets.
    second, *_ = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: "drop_after:1"), settings, tmp_path, 600.0
    )
    assert second.sockets == []


def test_a_long_healthy_connection_resets_the_backoff(tmp_path: Path) -> None:
    plan = {
        0: "drop_after:1",
        1: "drop_after:1",
        2: "drop_after:1",
        3: "drop_after:300",
        4: "drop_after:1",
    }
    settings = _settings(reconnect_min=5, reconnect_max=300, healthy_after=120)
    api, *_ = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: plan.get(n, "ok")), settings, tmp_path, 1200.0
    )
    waits = [b - a for a, b in zip(api.sockets, api.sockets[1:], strict=False)]
    lifetimes = [1, 1, 1, 300]
    delays = [w - life for w, life in zip(waits, lifetimes, strict=False)]
    assert delays[2] >= 10.0  # backing off: third failure waits at least min*2**2/2
    assert 5.0 <= delays[3] <= 5.0 * 1.0 + 1e-6  # after 300 healthy seconds: back to the minimum


def test_a_rejected_token_stops_the_session_and_is_remembered(tmp_path: Path) -> None:
    api, _, _, _, error = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: "4403"), _settings(), tmp_path, 60.0
    )
    assert isinstance(error, TokenRejectedError)
    assert "good-token" not in str(error)
    assert len(api.sockets) == 1
    # The restart policy brings the process back: it refuses before any network call.
    again, _, _, _, error = _run(ScriptedApi, _settings(), tmp_path, 60.0)
    assert isinstance(error, TokenRejectedError)
    assert again.discoveries == 0
    assert again.sockets == []
    # A new token is tried, and its success clears the memory.
    new, *_, error = _run(
        lambda loop: ScriptedApi(loop, valid_tokens={"new-token"}),
        _settings(token=SecretStr("new-token")),
        tmp_path,
        60.0,
    )
    assert error is None
    assert len(new.sockets) == 1
    assert not (tmp_path / "tibber-rejected-token.json").exists()


def test_unauthenticated_discovery_is_fatal_too(tmp_path: Path) -> None:
    api, _, _, _, error = _run(
        lambda loop: ScriptedApi(loop, valid_tokens=set()), _settings(), tmp_path, 60.0
    )
    assert isinstance(error, TokenRejectedError)
    assert api.sockets == []


def test_rate_limiting_waits_long(tmp_path: Path) -> None:
    settings = _settings(rate_limited_backoff=900)
    api, _, _, metrics, _ = _run(
        lambda loop: ScriptedApi(loop, plan=lambda n: "4429" if n == 0 else "ok"),
        settings,
        tmp_path,
        1000.0,
    )
    assert len(api.sockets) == 2
    assert api.sockets[1] - api.sockets[0] >= 900.0
    assert metrics.reconnects.labels("rate_limited")._value.get() == 1


def test_errors_then_complete_resubscribes_only_that_home_on_the_same_socket(
    tmp_path: Path,
) -> None:
    api, _, measurements, metrics, _ = _run(
        lambda loop: ScriptedApi(loop, errors_for={"home-b": 2}), _settings(), tmp_path, 120.0
    )
    assert len(api.sockets) == 1
    b_subscriptions = [t for t, home in api.subscriptions if home == "home-b"]
    assert len(b_subscriptions) == 3
    assert b_subscriptions[1] - b_subscriptions[0] >= 5.0  # backoff, not a hot loop
    assert any(home == "home-a" and t < b_subscriptions[2] for t, home in measurements)
    assert metrics.resubscriptions.labels("home-b", "server_ended")._value.get() == 2


def test_no_token_is_a_clear_error(tmp_path: Path) -> None:
    _, _, _, _, error = _run(ScriptedApi, TibberSettings(), tmp_path, 10.0)
    assert isinstance(error, FatalSourceError)
    assert "METERSTREAM_TIBBER_TOKEN" in str(error)


@pytest.mark.parametrize("demo", [True])
def test_the_demo_token_is_only_used_when_asked_for(demo: bool) -> None:
    assert TibberSettings().resolved_token() is None
    assert TibberSettings(demo=demo).resolved_token() is not None
