"""Logging for every meterstream process, configured once by the CLI.

Modules call ``logging.getLogger(__name__)``. Context always has the same shape,
``meter_id=... topic[p] offset=...``, so log lines can be grepped across components.
A redaction filter replaces every configured secret with ``**********`` in each record,
as a second line of defence behind SecretStr (library exception messages can echo
connection parameters).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Literal

MASK = "**********"
# Values shorter than this are not redacted: masking a 3-letter word everywhere would make
# logs unreadable, and a secret that short is not a secret worth the name.
_MIN_SECRET_LENGTH = 6


# Secrets learned after start-up (a token re-read from its file) join this set.
_LATE_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Redact ``value`` from every log line from now on (for secrets read after start-up)."""
    if len(value) >= _MIN_SECRET_LENGTH:
        _LATE_SECRETS.add(value)


class RedactSecrets(logging.Filter):
    """Replaces known secret values in the formatted message and the exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._fixed = {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}
        self._secrets = sorted(self._fixed, key=len, reverse=True)
        self._known = 0

    def _refresh(self) -> None:
        if len(_LATE_SECRETS) != self._known:
            self._known = len(_LATE_SECRETS)
            self._secrets = sorted(self._fixed | _LATE_SECRETS, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        self._refresh()
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for Loki, Vector or any log shipper."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(
    level: str = "INFO",
    fmt: Literal["text", "json"] = "text",
    secrets: Iterable[str] = (),
) -> None:
    """Set up the root logger once; a no-op when the host application already configured it."""
    root = logging.getLogger()
    if root.handlers and not getattr(root, "_meterstream_configured", False):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    root._meterstream_configured = True  # type: ignore[attr-defined]
    # librdkafka and aiokafka are chatty at INFO; their warnings still get through.
    for noisy in ("aiokafka", "kafka", "urllib3", "faust", "mode", "gql", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # librdkafka warns about transient broker states (coordinator loading, a broker restarting)
    # that it retries by itself; errors still get through.
    logging.getLogger("librdkafka").setLevel(max(logging.ERROR, root.level))
