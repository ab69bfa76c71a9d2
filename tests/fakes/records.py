"""What the fake Tibber API saw and sent, kept for assertions.

Tokens are never stored: an HTTP record keeps the ``Authorization`` header redacted, and a
``connection_init`` record keeps only whether a token was present and whether it was valid.
All times are ``time.time()`` wall-clock seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FrameKind = Literal["next", "error", "complete"]
EndedBy = Literal["client", "server", "socket_closed"]


@dataclass
class HttpRecord:
    """One request to the HTTP GraphQL endpoint and the status it got."""

    seq: int
    at: float
    method: str
    path: str
    user_agent: str | None
    headers: dict[str, str]
    body: Any
    token_present: bool
    token_valid: bool
    status: int = 0


@dataclass
class HandshakeRecord:
    """One WebSocket upgrade attempt, including the ones refused by fault injection."""

    at: float
    user_agent: str | None
    offered_protocols: list[str]
    status: int
    socket_id: int | None


@dataclass
class InitRecord:
    """A ``connection_init`` message, without the token itself."""

    socket_id: int
    at: float
    token_present: bool
    token_valid: bool
    payload_keys: list[str]


@dataclass
class FrameRecord:
    """One subscription frame (``next``/``error``/``complete``) the server sent."""

    seq: int
    at: float
    socket_id: int
    op_id: str
    home_id: str | None
    kind: FrameKind
    payload: Any
    duplicate: bool = False


@dataclass
class SubscriptionRecord:
    """A ``subscribe`` message that started a live subscription."""

    socket_id: int
    op_id: str
    home_id: str
    started_at: float
    ended_at: float | None = None
    ended_by: EndedBy | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass
class SocketRecord:
    """One accepted WebSocket and everything sent on it after the upgrade."""

    socket_id: int
    opened_at: float
    user_agent: str | None
    offered_protocols: list[str]
    protocol: str | None
    init: InitRecord | None = None
    acked: bool = False
    closed_at: float | None = None
    #: close code the fake sent (None: the client closed first, or the socket was dropped)
    server_close_code: int | None = None
    server_close_reason: str | None = None
    #: close code aiohttp saw from the client (its own code, or the echo of ours; 1006 = dropped)
    client_close_code: int | None = None
    dropped: bool = False
    pings_received: int = 0
    pongs_sent: int = 0
    frames: list[FrameRecord] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass
class FakeTibberLog:
    """Everything the fake recorded; ``seq`` numbers are shared by HTTP records and frames."""

    http: list[HttpRecord] = field(default_factory=list)
    handshakes: list[HandshakeRecord] = field(default_factory=list)
    sockets: dict[int, SocketRecord] = field(default_factory=dict)
    subscriptions: list[SubscriptionRecord] = field(default_factory=list)
    last_seq: int = 0

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    # -- HTTP -------------------------------------------------------------------------------
    @property
    def http_request_count(self) -> int:
        return len(self.http)

    @property
    def user_agents_http(self) -> list[str | None]:
        return [r.user_agent for r in self.http]

    # -- WebSocket --------------------------------------------------------------------------
    @property
    def sockets_opened(self) -> list[tuple[int, float]]:
        """(socket id, opened at) for every accepted upgrade, in order."""
        return [(s.socket_id, s.opened_at) for s in self.sockets.values()]

    @property
    def sockets_opened_count(self) -> int:
        return len(self.sockets)

    @property
    def active_sockets(self) -> list[int]:
        return [s.socket_id for s in self.sockets.values() if s.open]

    @property
    def user_agents_ws(self) -> list[str | None]:
        return [s.user_agent for s in self.sockets.values()]

    @property
    def connection_inits(self) -> list[InitRecord]:
        return [s.init for s in self.sockets.values() if s.init is not None]

    def frames(
        self,
        *,
        socket_id: int | None = None,
        home_id: str | None = None,
        kind: FrameKind | None = "next",
    ) -> list[FrameRecord]:
        """Frames in send order, filtered; ``kind=None`` returns every kind."""
        found = [
            f
            for s in self.sockets.values()
            if socket_id is None or s.socket_id == socket_id
            for f in s.frames
            if (home_id is None or f.home_id == home_id) and (kind is None or f.kind == kind)
        ]
        return sorted(found, key=lambda f: f.seq)

    def measurements(self, home_id: str, *, socket_id: int | None = None) -> list[Any]:
        """The ``liveMeasurement`` objects of the ``next`` frames sent for a home."""
        return [
            (f.payload.get("data") or {}).get("liveMeasurement")
            for f in self.frames(socket_id=socket_id, home_id=home_id)
        ]

    def subscriptions_started(self, home_id: str | None = None) -> int:
        return sum(1 for s in self.subscriptions if home_id is None or s.home_id == home_id)

    def subscriptions_completed(
        self, home_id: str | None = None, *, by: EndedBy | None = None
    ) -> int:
        return sum(
            1
            for s in self.subscriptions
            if not s.active
            and (home_id is None or s.home_id == home_id)
            and (by is None or s.ended_by == by)
        )

    def active_subscriptions(self, home_id: str | None = None) -> list[SubscriptionRecord]:
        return [
            s for s in self.subscriptions if s.active and (home_id is None or s.home_id == home_id)
        ]
