"""Tibber's API behind two small interfaces, so the session logic can run on a fake clock.

:class:`LiveApi` discovers homes (HTTPS GraphQL) and opens sockets; :class:`LiveSocket`
subscribes one home. :class:`GqlLiveApi` implements them with gql: ``graphql-transport-ws`` set
explicitly, the token in ``connection_init``, a User-Agent on the HTTP call and on the socket
upgrade, protocol ping/pong as the socket's health check. gql's exceptions are mapped to
:mod:`connector.tibber.errors`, whose types decide what the session does.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.websockets import WebsocketsTransport

from connector.tibber.errors import AuthRejected, RateLimited, SocketLost, SubscriptionEnded
from connector.tibber.payload import LIVE_FIELDS
from meterstream import __version__
from meterstream.settings import TibberSettings

DISCOVERY_QUERY = """
query meterstreamDiscovery {
  viewer {
    websocketSubscriptionUrl
    homes { id appNickname timeZone features { realTimeConsumptionEnabled } }
  }
}
"""

LIVE_SUBSCRIPTION = (
    "subscription meterstreamLive($homeId: ID!) { liveMeasurement(homeId: $homeId) { "
    + LIVE_FIELDS
    + " } }"
)

SUBPROTOCOL = "graphql-transport-ws"


def user_agent() -> str:
    """``meterstream/<v> gql/<v> (python/<v>)``: the platform/version driver/version form Tibber asks for."""
    return f"meterstream/{__version__} gql/{metadata.version('gql')} (python/{platform.python_version()})"


@dataclass(frozen=True)
class Home:
    id: str
    nickname: str | None
    time_zone: str | None
    real_time_enabled: bool | None


@dataclass(frozen=True)
class Discovery:
    websocket_url: str | None
    homes: tuple[Home, ...]


class LiveSocket(Protocol):
    def subscribe(self, home_id: str) -> AsyncIterator[Mapping[str, Any]]:
        """Measurements of one home; ends with SubscriptionEnded, or the socket's error."""
        ...


class LiveApi(Protocol):
    async def discover(self, token: str) -> Discovery: ...

    def connect(self, url: str, token: str) -> AbstractAsyncContextManager[LiveSocket]: ...


def close_code_of(exc: BaseException) -> int | None:
    """The websocket close code or HTTP status behind an exception, searched along its causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        received = getattr(current, "rcvd", None)  # websockets.ConnectionClosed
        if received is not None and getattr(received, "code", None):
            return int(received.code)
        response = getattr(current, "response", None)  # websockets.InvalidStatus on the upgrade
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        code = getattr(current, "code", None)  # gql TransportServerError, websockets < 14
        if isinstance(code, int) and code >= 400:
            return code
        current = current.__cause__ or current.__context__
    return None


def classify(exc: BaseException, where: str) -> Exception:
    """The connector's error for a failure of the socket or of an HTTP call."""
    code = close_code_of(exc)
    if code in (4403, 401):
        return AuthRejected(f"Tibber rejected the token ({where}, code {code})")
    if code in (4429, 429):
        return RateLimited(f"Tibber is rate limiting this client ({where}, code {code})")
    detail = f"code {code}" if code else type(exc).__name__
    return SocketLost(f"{where} failed: {detail}", close_code=code)


def _auth_error(errors: Any) -> bool:
    for error in errors or []:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        if isinstance(extensions, Mapping) and extensions.get("code") == "UNAUTHENTICATED":
            return True
    return False


def parse_discovery(data: Mapping[str, Any]) -> Discovery:
    viewer = data.get("viewer") or {}
    homes = []
    for home in viewer.get("homes") or []:
        features = home.get("features") or {}
        homes.append(
            Home(
                id=str(home["id"]),
                nickname=home.get("appNickname"),
                time_zone=home.get("timeZone"),
                real_time_enabled=features.get("realTimeConsumptionEnabled"),
            )
        )
    return Discovery(viewer.get("websocketSubscriptionUrl"), tuple(homes))


class _GqlSocket:
    def __init__(self, session: Any) -> None:
        self._session = session

    async def subscribe(self, home_id: str) -> AsyncIterator[Mapping[str, Any]]:
        request = GraphQLRequest(LIVE_SUBSCRIPTION, variable_values={"homeId": home_id})
        try:
            async for result in self._session.subscribe(request):
                measurement = result.get("liveMeasurement")
                if measurement is not None:
                    yield measurement
        except TransportQueryError as exc:
            # `next` with errors (then `complete`): this home only; the socket stays up.
            messages = "; ".join(str(e.get("message", e)) for e in (exc.errors or [])) or str(exc)
            raise SubscriptionEnded(f"home {home_id}: server sent errors: {messages}") from None
        except (SubscriptionEnded, GeneratorExit):
            raise
        except Exception as exc:
            raise classify(exc, "socket") from exc
        raise SubscriptionEnded(f"home {home_id}: server completed the subscription")


class GqlLiveApi:
    """The real Tibber API through gql."""

    def __init__(self, settings: TibberSettings) -> None:
        self._settings = settings
        self._user_agent = user_agent()

    async def discover(self, token: str) -> Discovery:
        transport = AIOHTTPTransport(
            url=self._settings.api_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": self._user_agent},
            timeout=int(self._settings.http_timeout),
            ssl=self._settings.api_url.startswith("https"),
        )
        try:
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                data = await session.execute(GraphQLRequest(DISCOVERY_QUERY))
        except TransportQueryError as exc:
            if _auth_error(exc.errors):
                raise AuthRejected("Tibber rejected the token (UNAUTHENTICATED)") from None
            raise SocketLost(f"discovery query failed: {exc.errors}") from None
        except TransportServerError as exc:
            raise classify(exc, "discovery") from None
        except Exception as exc:
            raise classify(exc, "discovery") from None
        return parse_discovery(data)

    def connect(self, url: str, token: str) -> AbstractAsyncContextManager[LiveSocket]:
        return self._connect(url, token)

    @asynccontextmanager
    async def _connect(self, url: str, token: str) -> AsyncIterator[LiveSocket]:
        settings = self._settings
        transport = WebsocketsTransport(
            url=url,
            headers={"User-Agent": self._user_agent},
            init_payload={"token": token},
            subprotocols=[SUBPROTOCOL],
            ssl=url.startswith("wss"),
            connect_timeout=settings.connect_timeout,
            ack_timeout=settings.ack_timeout,
            ping_interval=settings.ping_interval,
            pong_timeout=settings.pong_timeout,
            # gql on Python 3.11 can wait the whole close timeout when a pong races the close.
            close_timeout=3,
        )
        client = Client(transport=transport, fetch_schema_from_transport=False)
        try:
            session = await client.connect_async(reconnecting=False)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise classify(exc, "socket connect") from None
        try:
            yield _GqlSocket(session)
        finally:
            # Closing a socket that already died may fail; there is nothing left to do then.
            with contextlib.suppress(Exception):
                await client.close_async()  # type: ignore[no-untyped-call]
