"""Reading WebSocket close codes and handshake statuses out of gql exceptions.

gql 4.4 (``WebsocketsTransport``) never puts the close code on its own exceptions. The
``websockets`` adapter wraps every failed ``recv``/``send`` in ``TransportConnectionFailed``
(``"Error trying to receive data: ConnectionClosedError"``) raised *from* the
``websockets.exceptions.ConnectionClosed`` that knows the code, and a failed upgrade in
``TransportConnectionFailed("Connect failed")`` raised from ``websockets.exceptions.InvalidStatus``.
So: walk ``__cause__``/``__context__`` and read the websockets exception.

* close during ``connection_init`` (4403, 4429, 4500): ``async with Client(...)`` raises
  ``TransportConnectionFailed``; ``__cause__`` is ``ConnectionClosedError`` with ``rcvd.code``.
* close during a subscription (1001, 4403, ...): the subscription's ``async for`` raises that
  same kind of ``TransportConnectionFailed`` (1000/1001 arrive as ``ConnectionClosedOK``).
* dropped TCP connection: ``ConnectionClosedError`` with ``rcvd is None`` -> code None (1006).
* pong timeout: ``TransportServerError("No pong received after X seconds")`` with no cause;
  gql then closes the socket itself (close code 1000 from the client side).
"""

from __future__ import annotations

from collections.abc import Iterator

from websockets.exceptions import ConnectionClosed, InvalidStatus


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, each once, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _closed(exc: BaseException) -> ConnectionClosed | None:
    for item in exception_chain(exc):
        if isinstance(item, ConnectionClosed):
            return item
    return None


def close_code_of(exc: BaseException) -> int | None:
    """The close code the server sent, or None (no close frame received, or not a close).

    >>> from gql.transport.exceptions import TransportConnectionFailed
    >>> from websockets.exceptions import ConnectionClosedError
    >>> from websockets.frames import Close
    >>> try:
    ...     try:
    ...         raise ConnectionClosedError(Close(4403, "Invalid token"), Close(4403, ""), True)
    ...     except ConnectionClosedError as closed:
    ...         raise TransportConnectionFailed("Error trying to receive data") from closed
    ... except TransportConnectionFailed as failed:
    ...     print(close_code_of(failed), close_reason_of(failed))
    4403 Invalid token
    """
    closed = _closed(exc)
    if closed is None or closed.rcvd is None:
        return None
    return closed.rcvd.code


def close_reason_of(exc: BaseException) -> str | None:
    """The close reason the server sent, or None."""
    closed = _closed(exc)
    if closed is None or closed.rcvd is None:
        return None
    return closed.rcvd.reason


def handshake_status_of(exc: BaseException) -> int | None:
    """The HTTP status of a refused WebSocket upgrade (429, 503, ...), or None."""
    for item in exception_chain(exc):
        if isinstance(item, InvalidStatus):
            return item.response.status_code
    return None
