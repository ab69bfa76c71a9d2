"""One ``graphql-transport-ws`` connection of the fake, server side.

Follows the protocol of the graphql-ws library (which Tibber speaks since Dec 2022) plus the
Tibber-specific closes of docs/tibber-api.md §4:

===========================================  ================================================
client does                                  fake answers
===========================================  ================================================
offers no ``graphql-transport-ws``           close 4406 "Subprotocol not acceptable"
no ``connection_init`` within the timeout    close 4408 "Connection initialisation timeout"
``connection_init`` without ``payload.token``  close 4500 "Internal server error" (Tibber)
``connection_init`` with an invalid token    close 4403 "Invalid token" (Tibber)
a 3rd socket for the same token              close 4429 "Too many open connections on this
                                             server; count 2;" (Tibber; instead of the ack)
a 2nd ``connection_init``                    close 4429 "Too many initialisation requests"
``subscribe`` before the ack                 close 4401 "Unauthorized"
``subscribe`` with an id already running     close 4409 "Subscriber for <id> already exists"
anything unparsable / unknown ``type``       close 4400 "Invalid message received"
``ping`` (protocol level) / RFC 6455 ping    ``pong`` (unless stalled with answer_pings=False)
``subscribe`` with an invalid document       ``error`` with the GraphQL errors
``subscribe`` that fails before streaming    ``next`` with ``errors``, then ``complete``
``complete``                                 stops that subscription, no reply
===========================================  ================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    subscribe,
    validate,
)

from tests.fakes.homes import FakeHome
from tests.fakes.records import (
    EndedBy,
    FrameKind,
    FrameRecord,
    HandshakeRecord,
    InitRecord,
    SocketRecord,
    SubscriptionRecord,
)
from tests.fakes.schema import tibber_schema

if TYPE_CHECKING:
    from tests.fakes.server import FakeTibber

PROTOCOL = "graphql-transport-ws"


def format_result(result: ExecutionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    return payload


@dataclass
class LiveSubscription:
    """A running ``liveMeasurement`` stream; each emitted event yields exactly one result."""

    session: SocketSession
    op_id: str
    home_id: str
    stream: AsyncIterator[ExecutionResult]
    queue: asyncio.Queue[dict[str, Any]]
    record: SubscriptionRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def deliver(self, measurement: dict[str, Any], times: int) -> bool:
        """Run the client's selection over ``measurement`` and send it ``times`` times."""
        async with self.lock:
            if not self.record.active:
                return False
            self.queue.put_nowait(measurement)
            result = await anext(self.stream)
            payload = format_result(result)
            for copy in range(times):
                sent = await self.session.send_frame(
                    self.op_id, self.home_id, "next", payload, duplicate=copy > 0
                )
                if not sent:
                    return False
            return True

    async def end(self, by: EndedBy) -> None:
        async with self.lock:
            if not self.record.active:
                return
            self.record.ended_at = time.time()
            self.record.ended_by = by
            self.session.subs.pop(self.op_id, None)
            with contextlib.suppress(Exception):
                await self.stream.aclose()  # type: ignore[attr-defined]


class _SubscribeContext:
    """``context_value`` of one subscribe: hands the resolver a stream fed by ``deliver``."""

    def __init__(self, session: SocketSession) -> None:
        self.session = session
        self.home_id: str | None = None
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def find_home(self, home_id: str) -> FakeHome | None:
        return self.session.server.homes.get(home_id)

    def open_stream(self, home_id: str) -> AsyncIterator[dict[str, Any]]:
        self.home_id = home_id
        queue = self.queue

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        return events()


class SocketSession:
    """Protocol state of one accepted socket. The token is held in memory only, never logged."""

    def __init__(
        self,
        server: FakeTibber,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: SocketRecord,
    ) -> None:
        self.server = server
        self.ws = ws
        self.record = record
        self.transport = request.transport
        self.subs: dict[str, LiveSubscription] = {}
        self.token: str | None = None
        self.init_received = False
        self._send_lock = asyncio.Lock()

    @property
    def acked(self) -> bool:
        return self.record.acked

    # -- sending ------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any]) -> bool:
        if self.ws.closed:
            return False
        try:
            async with self._send_lock:
                await self.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def send_frame(
        self,
        op_id: str,
        home_id: str | None,
        kind: FrameKind,
        payload: Any,
        *,
        duplicate: bool = False,
    ) -> bool:
        message: dict[str, Any] = {"id": op_id, "type": kind}
        if kind != "complete":
            message["payload"] = payload
        sent = await self.send(message)
        if sent:
            log = self.server.log
            self.record.frames.append(
                FrameRecord(
                    log.next_seq(),
                    time.time(),
                    self.record.socket_id,
                    op_id,
                    home_id,
                    kind,
                    payload,
                    duplicate,
                )
            )
        return sent

    async def close(self, code: int, reason: str) -> None:
        if self.ws.closed:
            return
        self.record.server_close_code = code
        self.record.server_close_reason = reason
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=reason.encode())

    def drop(self) -> None:
        """Abort the TCP connection: no close frame, the client sees code 1006."""
        self.record.dropped = True
        if self.transport is not None:
            self.transport.abort()

    # -- receiving ----------------------------------------------------------------------------
    async def run(self) -> None:
        if self.ws.ws_protocol != PROTOCOL:
            await self.close(4406, "Subprotocol not acceptable")
            return
        watchdog = asyncio.ensure_future(self._init_watchdog())
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type is WSMsgType.PING:
                    if self.server.answer_pings:
                        await self.ws.pong(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self.close(4400, "Invalid message received")
                elif msg.type is not WSMsgType.PONG:
                    break  # CLOSE, CLOSING, CLOSED, ERROR
        finally:
            watchdog.cancel()
            for sub in list(self.subs.values()):
                await sub.end("socket_closed")

    async def _init_watchdog(self) -> None:
        timeout = self.server.init_timeout_s
        if timeout is None:
            return
        await asyncio.sleep(timeout)
        if not self.init_received:
            await self.close(4408, "Connection initialisation timeout")

    async def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        op_id = message.get("id") if isinstance(message, dict) else None
        if kind == "connection_init" and isinstance(message, dict):
            await self._on_init(message.get("payload"))
        elif kind == "ping" and isinstance(message, dict):
            self.record.pings_received += 1
            if self.server.answer_pings:
                pong: dict[str, Any] = {"type": "pong"}
                if message.get("payload") is not None:
                    pong["payload"] = message["payload"]
                if await self.send(pong):
                    self.record.pongs_sent += 1
        elif kind == "pong":
            pass
        elif kind == "subscribe" and isinstance(op_id, str) and op_id and isinstance(message, dict):
            await self._on_subscribe(op_id, message.get("payload"))
        elif kind == "complete" and isinstance(op_id, str) and op_id:
            sub = self.subs.get(op_id)
            if sub is not None:
                await sub.end("client")
        else:
            await self.close(4400, "Invalid message received")

    async def _on_init(self, payload: Any) -> None:
        if self.init_received:
            await self.close(4429, "Too many initialisation requests")
            return
        self.init_received = True
        payload = payload if isinstance(payload, dict) else {}
        token = payload.get("token")
        present = isinstance(token, str) and bool(token)
        valid = present and token in self.server.valid_tokens
        self.record.init = InitRecord(
            self.record.socket_id, time.time(), present, valid, sorted(payload)
        )
        if not present:
            await self.close(4500, "Internal server error")
            return
        if not valid:
            await self.close(4403, "Invalid token")
            return
        assert isinstance(token, str)
        limit = self.server.max_sockets_per_token
        count = self.server.open_sockets_for(token)
        if limit is not None and count >= limit:
            await self.close(4429, f"Too many open connections on this server; count {count};")
            return
        self.token = token
        self.record.acked = True
        await self.send({"type": "connection_ack"})

    async def _on_subscribe(self, op_id: str, payload: Any) -> None:
        if not self.acked:
            await self.close(4401, "Unauthorized")
            return
        if op_id in self.subs:
            await self.close(4409, f"Subscriber for {op_id} already exists")
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            await self.close(4400, "Invalid message received")
            return
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        schema = tibber_schema()
        try:
            document = parse(payload["query"])
        except GraphQLError as exc:
            await self.send_frame(op_id, None, "error", [exc.formatted])
            return
        errors = validate(schema, document)
        operation = get_operation_ast(document, operation_name)
        if not errors and operation is None:
            errors = [GraphQLError("Unknown or ambiguous operation name.")]
        if errors:
            await self.send_frame(op_id, None, "error", [e.formatted for e in errors])
            return
        assert operation is not None
        context = _SubscribeContext(self)
        outcome: Any
        if operation.operation is OperationType.SUBSCRIPTION:
            outcome = subscribe(
                schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
            )
        else:
            outcome = execute(
                schema,
                document,
                root_value=self.server.root_value(),
                variable_values=variables,
                operation_name=operation_name,
            )
        if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
            outcome = await outcome
        if isinstance(outcome, ExecutionResult):
            await self.send_frame(op_id, None, "next", format_result(outcome))
            await self.send_frame(op_id, None, "complete", None)
            return
        assert context.home_id is not None
        record = SubscriptionRecord(self.record.socket_id, op_id, context.home_id, time.time())
        self.server.log.subscriptions.append(record)
        self.subs[op_id] = LiveSubscription(
            self, op_id, context.home_id, outcome, context.queue, record
        )


async def handle_upgrade(server: FakeTibber, request: web.Request) -> web.StreamResponse:
    """Accept (or refuse, per fault injection) one upgrade and run its session to the end."""
    user_agent = request.headers.get("User-Agent")
    offered = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    handshake = HandshakeRecord(time.time(), user_agent, offered, 101, None)
    server.log.handshakes.append(handshake)
    fault = server.take_ws_fault()
    if fault is not None:
        handshake.status = fault
        return web.Response(status=fault, text=f"fake fault: HTTP {fault}")
    if server.is_blocked(user_agent):
        handshake.status = 400
        return web.Response(status=400, text=f"User agent {user_agent} is blocked")
    # autoping=False: the session answers RFC 6455 pings itself, so a stall can withhold them
    ws = web.WebSocketResponse(
        protocols=(PROTOCOL,), autoping=False, timeout=server.close_timeout_s
    )
    await ws.prepare(request)
    socket_id = len(server.log.sockets) + 1
    handshake.socket_id = socket_id
    record = SocketRecord(socket_id, time.time(), user_agent, offered, ws.ws_protocol)
    server.log.sockets[socket_id] = record
    session = SocketSession(server, request, ws, record)
    server.sessions[socket_id] = session
    try:
        await session.run()
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
        record.closed_at = time.time()
        record.client_close_code = ws.close_code
        del server.sessions[socket_id]
    return ws
