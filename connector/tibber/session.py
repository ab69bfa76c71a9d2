"""The Tibber session: one socket for all homes, kept open as long as Tibber lets us.

The loop, in order: read the token (a ``*_FILE`` token again each time); refuse a token Tibber
rejected before; wait for the socket budget; discover the homes and the socket URL over HTTPS
(never a hard-coded URL); open one socket; subscribe every home; watch. What ends a socket
decides what comes next:

=========================================  ==============================================
4403, UNAUTHENTICATED                       remember the token as rejected, stop (exit 78)
4429, HTTP 429                              wait ``rate_limited_backoff`` (long), reconnect
dropped, 1001, 5xx, pong timeout            exponential backoff with jitter, reconnect
``errors`` then ``complete`` for a home     resubscribe that home after its own backoff
a home silent for ``stale_after``           resubscribe it on the same socket, backing off
=========================================  ==============================================

Every new socket, whatever its cause, passes :class:`~connector.tibber.policy.SocketBudget`.
Socket health is judged by protocol ping/pong alone; data staleness only ever costs a
resubscription, so a Pulse outage cannot burn Tibber's socket budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from connector.clock import Clock
from connector.metrics import ConnectorMetrics
from connector.sources.errors import FatalSourceError, TokenRejectedError
from connector.tibber.api import Discovery, Home, LiveApi, LiveSocket
from connector.tibber.errors import (
    AuthRejected,
    NoHomes,
    RateLimited,
    SocketLost,
    SubscriptionEnded,
)
from connector.tibber.guard import RejectedTokenGuard
from connector.tibber.policy import Backoff, HomeWatchdog, SocketBudget
from meterstream.logs import register_secret
from meterstream.settings import TibberSettings

log = logging.getLogger(__name__)

OnMeasurement = Callable[[str, Mapping[str, Any]], None]


class TibberSession:
    def __init__(
        self,
        settings: TibberSettings,
        api: LiveApi,
        clock: Clock,
        *,
        guard: RejectedTokenGuard,
        budget: SocketBudget,
        metrics: ConnectorMetrics,
        on_measurement: OnMeasurement,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._api = api
        self._clock = clock
        self._guard = guard
        self._budget = budget
        self._metrics = metrics
        self._on_measurement = on_measurement
        self._rng = rng or random.Random()  # noqa: S311 - jitter
        self._watchdog = HomeWatchdog(settings.stale_after, settings.stale_backoff_max)
        self._connected = False
        self.sockets_opened = 0
        self.homes: tuple[str, ...] = ()

    # -- what the outside sees ------------------------------------------------------------
    def ready(self) -> bool:
        """Subscribed and every home's data fresh."""
        return self._connected and self._watchdog.fresh(self._clock.monotonic())

    # -- the loop -------------------------------------------------------------------------
    def _token(self) -> str:
        secret = self._settings.resolved_token()
        if secret is None or not secret.get_secret_value():
            raise FatalSourceError(
                "no Tibber token: set METERSTREAM_TIBBER_TOKEN or METERSTREAM_TIBBER_TOKEN_FILE "
                "(or METERSTREAM_TIBBER_DEMO=true for Tibber's shared demo account)"
            )
        token = secret.get_secret_value()
        register_secret(token)
        rejected_at = self._guard.rejected_at(token)
        if rejected_at is not None:
            raise TokenRejectedError(
                f"Tibber rejected this token at {rejected_at}; meterstream will not use it again. "
                "Create a new token at https://developer.tibber.com/settings/access-token and set "
                "METERSTREAM_TIBBER_TOKEN (or update the METERSTREAM_TIBBER_TOKEN_FILE file)"
            )
        return token

    def _select(self, discovery: Discovery) -> tuple[Home, ...]:
        wanted = self._settings.home_ids
        if wanted:
            known = {h.id: h for h in discovery.homes}
            missing = [h for h in wanted if h not in known]
            if missing:
                log.warning("configured homes not on this Tibber account: %s", ", ".join(missing))
            homes = tuple(known[h] for h in wanted if h in known)
        else:
            homes = tuple(h for h in discovery.homes if h.real_time_enabled)
        if not homes:
            raise NoHomes(
                "no home to subscribe: none of this account's homes has real-time data "
                "(a Tibber Pulse or Watty) enabled"
                + (f" among METERSTREAM_TIBBER_HOMES={','.join(wanted)}" if wanted else "")
            )
        return homes

    async def _respect_budget(self) -> None:
        wait = self._budget.wait_time(self._clock.monotonic())
        if wait > 0:
            log.warning(
                "socket budget used up (%d new sockets in the last hour, limit %d): waiting %.0f s",
                self._budget.used,
                self._budget.per_hour,
                wait,
            )
            await self._clock.sleep(wait)

    async def run(self) -> None:
        """Stream until cancelled; raises FatalSourceError when it must not go on."""
        backoff = Backoff(self._settings.reconnect_min, self._settings.reconnect_max, self._rng)
        cause = "start"
        while True:
            token = self._token()
            delay: float
            connected_at: float | None = None
            try:
                discovery = await self._api.discover(token)
                homes = self._select(discovery)
                if not discovery.websocket_url:
                    raise SocketLost("Tibber returned no websocketSubscriptionUrl for this account")
                await self._respect_budget()
                self._budget.record(self._clock.monotonic())
                self.sockets_opened += 1
                self._metrics.reconnects.labels(cause).inc()
                self._metrics.sockets_in_last_hour.set(self._budget.used)
                log.info(
                    "opening a Tibber socket (cause=%s, %d of %d this hour) for %d home(s)",
                    cause,
                    self._budget.used,
                    self._budget.per_hour,
                    len(homes),
                )
                async with self._api.connect(discovery.websocket_url, token) as socket:
                    connected_at = self._clock.monotonic()
                    self._guard.accepted()
                    await self._serve(socket, homes)
                raise SocketLost("socket closed")
            except AuthRejected as exc:
                self._guard.reject(token)
                raise TokenRejectedError(
                    f"{exc}. meterstream stops and will refuse this token until it changes: create "
                    "a new one at https://developer.tibber.com/settings/access-token"
                ) from None
            except RateLimited as exc:
                cause, delay = "rate_limited", self._settings.rate_limited_backoff
                log.warning("%s: waiting %.0f s before trying again", exc, delay)
            except NoHomes as exc:
                # Nothing to stream: check again later, without spending sockets.
                cause, delay = "no_homes", max(self._settings.reconnect_max, 3600.0)
                log.warning("%s; checking again in %.0f s", exc, delay)
            except SocketLost as exc:
                if (
                    connected_at is not None
                    and self._clock.monotonic() - connected_at >= self._settings.healthy_after
                ):
                    backoff.reset()  # it was a good, long connection: reconnect soon
                cause, delay = "dropped", backoff.next_delay()
                log.warning("Tibber socket lost (%s): reconnecting in %.1f s", exc, delay)
            finally:
                self._connected = False
            await self._clock.sleep(delay)

    async def _serve(self, socket: LiveSocket, homes: tuple[Home, ...]) -> None:
        """Subscribe every home and watch; returns or raises when the socket is gone."""
        now = self._clock.monotonic()
        self.homes = tuple(h.id for h in homes)
        self._watchdog.track(self.homes, now)
        failed: asyncio.Queue[BaseException] = asyncio.Queue()
        tasks = {home: self._start_follow(socket, home, failed) for home in self.homes}
        self._connected = True
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    error = await asyncio.wait_for(failed.get(), self._settings.watchdog_interval)
                    raise error
                now = self._clock.monotonic()
                for home in self._watchdog.due(now):
                    log.warning(
                        "no data from home %s for %.0f s: resubscribing on the same socket",
                        home,
                        self._watchdog.age(home, now) or 0.0,
                    )
                    tasks[home].cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await tasks[home]
                    tasks[home] = self._start_follow(socket, home, failed)
                    self._watchdog.resubscribed(home, now)
                    self._metrics.resubscriptions.labels(home, "stale").inc()
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    def _start_follow(
        self, socket: LiveSocket, home: str, failed: asyncio.Queue[BaseException]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._follow(socket, home), name=f"tibber-home-{home}")

        def report(done: asyncio.Task[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                failed.put_nowait(done.exception())  # type: ignore[arg-type]

        task.add_done_callback(report)
        return task

    async def _follow(self, socket: LiveSocket, home: str) -> None:
        """One home's subscription; resubscribes after the server ends it (errors/complete)."""
        backoff = Backoff(self._settings.reconnect_min, self._settings.stale_backoff_max, self._rng)
        while True:
            try:
                async for measurement in socket.subscribe(home):
                    self._watchdog.data(home, self._clock.monotonic())
                    backoff.reset()
                    self._on_measurement(home, measurement)
            except SubscriptionEnded as exc:
                delay = backoff.next_delay()
                self._metrics.resubscriptions.labels(home, "server_ended").inc()
                log.warning("%s; resubscribing in %.1f s on the same socket", exc, delay)
                await self._clock.sleep(delay)
