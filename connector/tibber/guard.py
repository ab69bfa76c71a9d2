"""Remember a token Tibber rejected, so a restart policy cannot loop on it.

Compose and Kubernetes restart a process that exits; with a rejected token that would hammer
Tibber, which asks clients never to retry one. The connector stores a salted hash of the
rejected token (never the token) in its data dir and refuses to connect with the same token
until it changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path


class RejectedTokenGuard:
    def __init__(self, data_dir: Path) -> None:
        self._file = data_dir / "tibber-rejected-token.json"

    @staticmethod
    def _digest(salt: str, token: str) -> str:
        return hashlib.sha256((salt + token).encode("utf-8")).hexdigest()

    def rejected_at(self, token: str) -> str | None:
        """When this very token was rejected (ISO text), or None if it was not."""
        try:
            stored = json.loads(self._file.read_text())
            digest = self._digest(stored["salt"], token)
            if hmac.compare_digest(digest, stored["sha256"]):
                return str(stored.get("rejected_at", "earlier"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return None

    def reject(self, token: str) -> None:
        salt = secrets.token_hex(16)
        self._file.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "salt": salt,
            "sha256": self._digest(salt, token),
            "rejected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.chmod(0o600)
        tmp.replace(self._file)

    def accepted(self) -> None:
        """A token worked: forget any earlier rejection."""
        self._file.unlink(missing_ok=True)
