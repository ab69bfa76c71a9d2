"""Which Kafka, PostgreSQL and S3 the demo uses: configured ones, dev.env's, or freshly started.

* ``--no-services``: the endpoints already configured (environment, ``.env``, dev.env), as every
  other meterstream command would use them; the demo passes nothing extra to its children.
* otherwise, when ``.meterstream/dev.env`` exists and all its endpoints answer: those.
* otherwise the local services are started with :class:`DevStack` (as
  ``meterstream dev services up`` would; they keep running after the demo, so the data stays
  reachable).

In the last two cases the endpoints are passed to the children explicitly, so a ``.env``
pointing at another stack cannot send half of the demo elsewhere.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from meterstream.devservices.stack import DevStack

STACK_ROOT = Path(".meterstream")

Origin = Literal["configured", "dev.env", "started"]


@dataclass(frozen=True)
class Endpoints:
    """Where the services are, as METERSTREAM_* variables for the children (empty: configured)."""

    origin: Origin
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None  # the file holding the endpoints (and the passwords)

    def describe(self) -> str:
        if self.origin == "configured":
            return "the configured endpoints (--no-services)"
        if self.origin == "dev.env":
            return f"the local services of {self.env_file} (already running)"
        return f"local services started now (endpoints in {self.env_file}; they keep running)"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file written by DevStack (comments and blanks skipped)."""
    values: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _host_port(text: str, default_port: int) -> tuple[str, int] | None:
    """host and port of ``host:port`` or of a URL; None when there is none to check."""
    parts = urlsplit(text if "://" in text else f"//{text}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or default_port


def _postgres_address(dsn: str) -> tuple[str, int] | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return None
    host = str(params.get("host") or "")
    if not host or host.startswith("/"):
        return None  # a Unix socket directory: nothing to probe over TCP
    # A multi-host DSN: the first host is the one to probe.
    port = str(params.get("port") or 5432).split(",", maxsplit=1)[0]
    return host.split(",", maxsplit=1)[0], int(port)


def endpoints_answer(env: Mapping[str, str]) -> bool:
    """True when Kafka, PostgreSQL and S3 of ``env`` all accept TCP connections."""
    addresses = [
        _host_port(env.get("METERSTREAM_KAFKA_BOOTSTRAP_SERVERS", "").split(",")[0], 9092),
        _postgres_address(env.get("METERSTREAM_POSTGRES_DSN", "")),
        _host_port(env.get("METERSTREAM_S3_ENDPOINT", ""), 80),
    ]
    if env.get("METERSTREAM_SCHEMA_REGISTRY_URL"):
        addresses.append(_host_port(env["METERSTREAM_SCHEMA_REGISTRY_URL"], 80))
    return all(a is not None and _answers(*a) for a in addresses)


def resolve_endpoints(no_services: bool, progress: Callable[[str], None]) -> Endpoints:
    """Decide which services the demo uses, starting the local ones if needed."""
    if no_services:
        return Endpoints("configured")
    stack = DevStack(STACK_ROOT)
    existing = read_env_file(stack.env_file)
    if existing and endpoints_answer(existing):
        return Endpoints("dev.env", existing, stack.env_file)
    progress("starting the local services (Kafka, PostgreSQL, MinIO) ...")
    started = stack.up(progress=lambda line: progress(f"  {line}"), with_registry=False)
    return Endpoints("started", dict(started), stack.env_file)
