"""Errors that end a source for good (the connector exits instead of retrying)."""

from __future__ import annotations

from meterstream.errors import MeterstreamError


class FatalSourceError(MeterstreamError):
    """The source cannot continue without a person's help; the message says what to do."""

    exit_code = 1


class TokenRejectedError(FatalSourceError):
    """Tibber rejected the token: create a new one at developer.tibber.com and set it."""

    exit_code = 78  # EX_CONFIG: restarting with the same token cannot help
