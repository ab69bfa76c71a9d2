"""``ThreadedFakeTibber``: the fake on its own event loop in a background thread.

The code under test keeps its own loop (``asyncio.run`` in the test, a thread, a subprocess);
every method here is thread-safe: it runs the matching ``FakeTibber`` coroutine or state change
on the fake's loop and waits for it. Inside a coroutine, use the ``a``-prefixed variants (or
:meth:`arun`) so the caller's loop keeps running while the fake works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from tests.fakes.homes import GOOD_TOKEN, FakeHome
from tests.fakes.records import FakeTibberLog
from tests.fakes.server import FakeTibber

T = TypeVar("T")
_TIMEOUT_S = 30.0


class ThreadedFakeTibber:
    """Same constructor arguments as :class:`FakeTibber`; use as a context manager."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (GOOD_TOKEN,),
        homes: Iterable[FakeHome] | None = None,
        **options: Any,
    ) -> None:
        self.server = FakeTibber(tokens=tokens, homes=homes, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-tibber", daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        self.run(self.server.start)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.run(self.server.stop)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_TIMEOUT_S)
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- running things on the fake's loop --------------------------------------------------------
    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        async def run() -> Any:
            result = fn(*args, **kwargs)
            if isinstance(result, Awaitable):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run the plain function ``fn(*args, **kwargs)`` on the fake's loop; block for it."""
        result: T = self._submit(fn, args, kwargs).result(_TIMEOUT_S)
        return result

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run the coroutine function ``fn(*args, **kwargs)`` on the fake's loop; block for it."""
        result: T = self._submit(fn, args, kwargs).result(_TIMEOUT_S)
        return result

    async def arun(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Like :meth:`run`, but awaitable from another event loop without blocking it."""
        result: T = await asyncio.wrap_future(self._submit(fn, args, kwargs))
        return result

    # -- addresses and records ---------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def home_ids(self) -> list[str]:
        return self.server.home_ids

    @property
    def log(self) -> FakeTibberLog:
        """A consistent deep copy of the records, taken on the fake's loop."""
        return self.call(lambda: copy.deepcopy(self.server.log))

    # -- data (blocking) ---------------------------------------------------------------------------
    def emit(self, home_id: str, **fields: Any) -> int:
        return self.run(self.server.emit, home_id, **fields)

    def emit_raw(self, home_id: str, payload: dict[str, Any]) -> int:
        return self.run(self.server.emit_raw, home_id, payload)

    def emit_series(
        self,
        home_id: str,
        start: datetime,
        count: int,
        interval_s: float = 2.0,
        tz: str | None = None,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        return self.run(self.server.emit_series, home_id, start, count, interval_s, tz, **fields)

    def error_then_complete(self, home_id: str, message: str | None = None) -> int:
        return self.run(self.server.error_then_complete, home_id, message)

    # -- data (from a coroutine on another loop) -----------------------------------------------------
    async def aemit(self, home_id: str, **fields: Any) -> int:
        return await self.arun(self.server.emit, home_id, **fields)

    async def aemit_series(
        self,
        home_id: str,
        start: datetime,
        count: int,
        interval_s: float = 2.0,
        tz: str | None = None,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        return await self.arun(
            self.server.emit_series, home_id, start, count, interval_s, tz, **fields
        )

    async def aerror_then_complete(self, home_id: str, message: str | None = None) -> int:
        return await self.arun(self.server.error_then_complete, home_id, message)

    async def await_subscriptions(
        self, count: int = 1, home_id: str | None = None, timeout: float = 5.0
    ) -> None:
        await self.arun(self.server.wait_for_subscriptions, count, home_id, timeout)

    async def await_sockets(self, count: int = 1, timeout: float = 5.0) -> None:
        await self.arun(self.server.wait_for_sockets, count, timeout)

    async def await_condition(
        self, predicate: Callable[[FakeTibberLog], bool], timeout: float = 5.0
    ) -> None:
        """Wait (without blocking the caller's loop) until ``predicate(log)`` holds."""
        await self.arun(self.server.wait_until, lambda: predicate(self.server.log), timeout)

    # -- faults and switches (blocking; quick) -------------------------------------------------------
    def close_all(self, code: int = 1001, reason: str = "Going away") -> int:
        return self.run(self.server.close_all, code, reason)

    def drop_all(self) -> int:
        return self.run(self.server.drop_all)

    def stall(self, home_id: str | None = None, *, answer_pings: bool = True) -> None:
        self.call(self.server.stall, home_id, answer_pings=answer_pings)

    def resume(self) -> None:
        self.call(self.server.resume)

    def duplicate_next_frames(self, n: int) -> None:
        self.call(self.server.duplicate_next_frames, n)

    def fail_http(self, status: int, times: int = 1) -> None:
        self.call(self.server.fail_http, status, times)

    def fail_ws_handshake(self, status: int, times: int = 1) -> None:
        self.call(self.server.fail_ws_handshake, status, times)

    def block_user_agent(self, fragment: str) -> None:
        self.call(self.server.block_user_agent, fragment)

    def add_token(self, token: str) -> None:
        self.call(self.server.add_token, token)

    def invalidate_token(self, token: str, *, close_sockets: bool = False) -> int:
        return self.run(self.server.invalidate_token, token, close_sockets=close_sockets)

    @property
    def valid_tokens(self) -> set[str]:
        return self.call(lambda: set(self.server.valid_tokens))

    def set_real_time_enabled(self, home_id: str, enabled: bool | None) -> None:
        self.call(self.server.set_real_time_enabled, home_id, enabled)

    def set_connection_limit(self, limit: int | None) -> None:
        self.call(self.server.set_connection_limit, limit)

    def advertise_ws_url(self, url: str | None) -> None:
        self.call(self.server.advertise_ws_url, url)

    def wait_condition(
        self, predicate: Callable[[FakeTibberLog], bool], timeout: float = 5.0
    ) -> None:
        """Blocking wait until ``predicate(log)`` holds, e.g. after the client side has finished
        but the fake may still be tidying up a closed socket."""
        self.run(self.server.wait_until, lambda: predicate(self.server.log), timeout)

    def wait_for_subscriptions(
        self, count: int = 1, home_id: str | None = None, timeout: float = 5.0
    ) -> None:
        """Blocking wait; only for clients running in another thread or process."""
        self.run(self.server.wait_for_subscriptions, count, home_id, timeout)
