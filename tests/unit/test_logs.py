"""Secrets never reach a log line, even through a library's exception message."""

from __future__ import annotations

import logging

from meterstream.logs import MASK, RedactSecrets


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_redacts_message_arguments_and_exceptions() -> None:
    secret = "tibber-token-0123456789"
    redact = RedactSecrets([secret, "ab"])  # too short to redact: would mangle every log line
    record = _record("connecting with %s to ab", secret)
    try:
        raise RuntimeError(f"handshake failed for token={secret}")
    except RuntimeError as exc:
        record = _record("connecting with %s to ab", secret, exc=exc)
    assert redact.filter(record)
    assert secret not in record.getMessage()
    assert MASK in record.getMessage()
    assert record.getMessage().endswith("to ab")
    assert record.exc_text is not None
    assert secret not in record.exc_text
    formatted = logging.Formatter().format(record)
    assert secret not in formatted


def test_without_secrets_records_pass_unchanged() -> None:
    record = _record("plain %d", 3)
    assert RedactSecrets([]).filter(record)
    assert record.getMessage() == "plain 3"
