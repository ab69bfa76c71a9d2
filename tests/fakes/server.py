"""``FakeTibber``: Tibber's HTTP GraphQL endpoint and subscription socket on 127.0.0.1.

Everything runs on the caller's event loop; use :class:`tests.fakes.threaded.ThreadedFakeTibber`
(or the ``fake_tibber`` fixture) when the code under test runs its own loop or process.

Data never flows by itself: a test pushes every frame with :meth:`FakeTibber.emit`, and each
emit has been written to every reached socket when it returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes.graphql_http import handle_graphql_post
from tests.fakes.homes import GOOD_TOKEN, FakeHome, default_homes
from tests.fakes.measurements import MeterState, series_moments, tibber_timestamp
from tests.fakes.records import FakeTibberLog
from tests.fakes.websocket import LiveSubscription, SocketSession, handle_upgrade

HTTP_PATH = "/v1-beta/gql"
WS_PATH = "/v1-beta/gql/subscriptions"
DEFAULT_STREAM_ERROR = "unable to start stream api:{api} for device {device}; userId {user}"


class FakeTibber:
    """A protocol-faithful stand-in for api.tibber.com; see docs/tibber-api.md.

    >>> import asyncio
    >>> async def demo():
    ...     async with FakeTibber(tokens={"t"}) as fake:
    ...         return fake.http_url.endswith("/v1-beta/gql"), await fake.emit(fake.home_ids[0])
    >>> asyncio.run(demo())
    (True, 0)
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (GOOD_TOKEN,),
        homes: Iterable[FakeHome] | None = None,
        user_name: str = "Kari Nordmann",
        user_id: str = "d2b4c0a8-6f0e-4c38-9a53-2f1d5e7b9c01",
        max_sockets_per_token: int | None = 2,
        init_timeout_s: float | None = 10.0,
        close_timeout_s: float = 2.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.valid_tokens: set[str] = set(tokens)
        self.homes: dict[str, FakeHome] = {h.id: h for h in (homes or default_homes())}
        self.user_name = user_name
        self.user_id = user_id
        self.max_sockets_per_token = max_sockets_per_token
        self.init_timeout_s = init_timeout_s
        self.close_timeout_s = close_timeout_s
        self.log = FakeTibberLog()
        self.answer_pings = True
        self.advertised_ws_url: str | None = None
        self._host, self._port = host, port
        self._meters = {h.id: MeterState(h, seed) for h in self.homes.values()}
        self.sessions: dict[int, SocketSession] = {}
        self._stalled: set[str | None] = set()
        self._duplicates = 0
        self._http_faults: list[int] = []
        self._ws_faults: list[int] = []
        self._blocked_agents: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._base = ""

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post(HTTP_PATH, self._http)
        app.router.add_get(WS_PATH, self._ws)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=self.close_timeout_s
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        port = server.sockets[0].getsockname()[1]
        self._base = f"{self._host}:{port}"
        self.advertised_ws_url = self.ws_url
        return self

    async def stop(self) -> None:
        """Close every socket with 1001 Going away (as a server restart does), then shut down."""
        await self.close_all(1001, "Going away")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        """Full URL of the GraphQL endpoint, e.g. ``http://127.0.0.1:PORT/v1-beta/gql``."""
        return f"http://{self._base}{HTTP_PATH}"

    @property
    def ws_url(self) -> str:
        """The subscription URL (also what ``viewer.websocketSubscriptionUrl`` returns)."""
        return f"ws://{self._base}{WS_PATH}"

    @property
    def home_ids(self) -> list[str]:
        return list(self.homes)

    # -- data -----------------------------------------------------------------------------------
    def _live(self, home_id: str | None = None) -> list[LiveSubscription]:
        return [
            sub
            for session in self.sessions.values()
            for sub in list(session.subs.values())
            if home_id is None or sub.home_id == home_id
        ]

    async def emit(self, home_id: str, **fields: Any) -> int:
        """Send one ``next`` to every subscription of ``home_id``; return how many it reached.

        Missing fields get realistic defaults from the home's meter state; an explicit None stays
        null (for a non-null field such as ``power`` the client then gets GraphQL errors, as from
        any GraphQL server; use :meth:`emit_raw` to bypass the schema). ``timestamp`` may be a
        string (sent as is) or a datetime (formatted like Tibber's). While stalled, frames are
        dropped and 0 is returned; the meter counters still advance.
        """
        if home_id not in self.homes:
            raise KeyError(f"unknown home {home_id!r}")
        return await self._send_measurement(home_id, self._meters[home_id].measurement(fields))

    async def emit_series(
        self,
        home_id: str,
        start: datetime,
        count: int,
        interval_s: float = 2.0,
        tz: str | None = None,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """Emit ``count`` realistic frames from ``start`` (naive = local time in ``tz``).

        Timestamps carry the local offset (DST shifts included) and varying fractions (none,
        ``.5``, ``.123``, ...). Returns the full measurements that were emitted.
        """
        zone = ZoneInfo(tz or self.homes[home_id].time_zone)
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        sent = []
        for moment in series_moments(start, count, interval_s):
            stamp = tibber_timestamp(moment, zone)
            measurement = self._meters[home_id].measurement({"timestamp": stamp, **fields})
            await self._send_measurement(home_id, measurement)
            sent.append(measurement)
        return sent

    async def _send_measurement(self, home_id: str, measurement: dict[str, Any]) -> int:
        times = 1
        if self._duplicates > 0:
            self._duplicates -= 1
            times = 2
        if None in self._stalled or home_id in self._stalled:
            return 0
        reached = 0
        for sub in self._live(home_id):
            reached += await sub.deliver(measurement, times)
        return reached

    async def emit_raw(self, home_id: str, payload: dict[str, Any]) -> int:
        """Send ``next`` with exactly ``payload`` (no schema, no selection) to a home's streams."""
        reached = 0
        for sub in self._live(home_id):
            async with sub.lock:
                reached += await sub.session.send_frame(sub.op_id, home_id, "next", payload)
        return reached

    async def error_then_complete(self, home_id: str, message: str | None = None) -> int:
        """Send ``next`` with ``payload.errors`` and then ``complete`` to a home's subscriptions.

        This is what Tibber does when its streaming backend restarts; the socket stays open.
        """
        text = message or DEFAULT_STREAM_ERROR.format(
            api=uuid.uuid5(uuid.NAMESPACE_URL, home_id), device=home_id, user=self.user_id
        )
        payload = {"errors": [{"message": text}]}
        subs = self._live(home_id)
        for sub in subs:
            await sub.session.send_frame(sub.op_id, home_id, "next", payload)
            await sub.session.send_frame(sub.op_id, home_id, "complete", None)
            await sub.end("server")
        return len(subs)

    # -- faults ---------------------------------------------------------------------------------
    async def close_all(self, code: int = 1001, reason: str = "Going away") -> int:
        """Close every open socket with ``code`` (1001 restart, 4403, 4429, 4500, ...)."""
        sessions = [s for s in self.sessions.values() if not s.ws.closed]
        await asyncio.gather(*(s.close(code, reason) for s in sessions))
        return len(sessions)

    async def drop_all(self) -> int:
        """Abort every socket's TCP connection without a close frame (client sees 1006)."""
        sessions = [s for s in self.sessions.values() if not s.ws.closed]
        for session in sessions:
            session.drop()
        await asyncio.sleep(0)
        return len(sessions)

    def stall(self, home_id: str | None = None, *, answer_pings: bool = True) -> None:
        """Stop sending data for ``home_id`` (None: all homes); sockets stay open.

        With ``answer_pings=False`` the fake also stops answering protocol ``ping`` messages and
        RFC 6455 ping frames, so a client's pong timeout fires.
        """
        self._stalled.add(home_id)
        if not answer_pings:
            self.answer_pings = False

    def resume(self) -> None:
        """Undo every :meth:`stall`."""
        self._stalled.clear()
        self.answer_pings = True

    def duplicate_next_frames(self, n: int) -> None:
        """Send the frames of each of the next ``n`` emits twice (same payload, back to back)."""
        self._duplicates = n

    def fail_http(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` HTTP GraphQL requests with ``status`` (e.g. 429, 503)."""
        self._http_faults.extend([status] * times)

    def fail_ws_handshake(self, status: int, times: int = 1) -> None:
        """Refuse the next ``times`` WebSocket upgrades with HTTP ``status`` (429, 503, 504)."""
        self._ws_faults.extend([status] * times)

    def block_user_agent(self, fragment: str) -> None:
        """Answer HTTP 400 "User agent ... is blocked" to User-Agents containing ``fragment``."""
        self._blocked_agents.add(fragment)

    def add_token(self, token: str) -> None:
        self.valid_tokens.add(token)

    async def invalidate_token(self, token: str, *, close_sockets: bool = False) -> int:
        """Reject ``token`` from now on; optionally close its open sockets with 4403."""
        self.valid_tokens.discard(token)
        if not close_sockets:
            return 0
        sessions = [s for s in self.sessions.values() if s.token == token and not s.ws.closed]
        await asyncio.gather(*(s.close(4403, "Invalid token") for s in sessions))
        return len(sessions)

    def set_real_time_enabled(self, home_id: str, enabled: bool | None) -> None:
        """Set ``features.realTimeConsumptionEnabled`` (discovery only; emit still delivers)."""
        self.homes[home_id].real_time_enabled = enabled

    def set_connection_limit(self, limit: int | None) -> None:
        """Sockets per token before 4429; None switches the limit off (default 2)."""
        self.max_sockets_per_token = limit

    def advertise_ws_url(self, url: str | None) -> None:
        """Change ``viewer.websocketSubscriptionUrl`` (None: "cannot stream")."""
        self.advertised_ws_url = url

    # -- waiting --------------------------------------------------------------------------------
    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"condition not met within {timeout} s: {self.log.sockets_opened_count} "
                    f"sockets opened, {len(self.log.active_sockets)} open, "
                    f"{len(self._live())} live subscriptions"
                )
            await asyncio.sleep(0.005)

    async def wait_for_subscriptions(
        self, count: int = 1, home_id: str | None = None, timeout: float = 5.0
    ) -> None:
        """Wait until at least ``count`` subscriptions (of ``home_id``) are active."""
        await self.wait_until(lambda: len(self._live(home_id)) >= count, timeout)

    async def wait_for_sockets(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` sockets have been accepted since start (open or not)."""
        await self.wait_until(lambda: self.log.sockets_opened_count >= count, timeout)

    # -- internals used by the handlers -----------------------------------------------------------
    def open_sockets_for(self, token: str) -> int:
        return sum(1 for s in self.sessions.values() if s.token == token and not s.ws.closed)

    def root_value(self) -> dict[str, Any]:
        return {
            "viewer": {
                "login": "user@example.com",
                "userId": self.user_id,
                "name": self.user_name,
                "accountType": ["tibber", "customer"],
                "homes": [h.as_graphql() for h in self.homes.values()],
                "websocketSubscriptionUrl": self.advertised_ws_url,
            }
        }

    def is_blocked(self, user_agent: str | None) -> bool:
        return any(f in (user_agent or "") for f in self._blocked_agents)

    def take_http_fault(self) -> int | None:
        return self._http_faults.pop(0) if self._http_faults else None

    def take_ws_fault(self) -> int | None:
        return self._ws_faults.pop(0) if self._ws_faults else None

    async def _http(self, request: web.Request) -> web.Response:
        return await handle_graphql_post(self, request)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        return await handle_upgrade(self, request)
