"""How the Tibber API says no, mapped to what the connector does about it.

The error type decides the scope, as in gql: a subscription error touches one home, a socket
error ends the socket, an auth error ends the process.
"""

from __future__ import annotations

from meterstream.errors import MeterstreamError


class TibberError(MeterstreamError):
    """Root of the Tibber source's errors."""


class AuthRejected(TibberError):
    """Tibber rejected the token (close 4403, UNAUTHENTICATED): never retried with the same token."""


class RateLimited(TibberError):
    """Tibber refused a socket or a call for load (close 4429, HTTP 429): wait long, then retry."""


class SocketLost(TibberError):
    """The socket closed or failed (drop, 1001, 5xx, pong timeout): back off and reconnect."""

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class SubscriptionEnded(TibberError):
    """The server ended one home's subscription (``errors`` then ``complete``, or ``complete``)."""


class NoHomes(TibberError):
    """No home to subscribe: none has real-time data enabled, or the configured ids are unknown."""
