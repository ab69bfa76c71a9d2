"""Connections for the writer (``METERSTREAM_POSTGRES_*``) and the admin (``METERSTREAM_DB_ADMIN_*``).

The DSN and the password stay apart (the settings refuse a DSN with a password in it), so the DSN
can be named in messages. libpq does not echo passwords in its errors; :func:`redact` still
scrubs any secret from text that leaves this package, in case a server or a proxy does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from pydantic import SecretStr

from meterstream.settings import DbSettings, PostgresSettings
from sinks.db.errors import DbConnectError

REDACTED = "**********"


def redact(text: str, secrets: Iterable[SecretStr | str | None]) -> str:
    """``text`` with every non-empty secret replaced by asterisks.

    >>> redact("login as bob with hunter2 failed", ["hunter2", None, ""])
    'login as bob with ********** failed'
    """
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            text = text.replace(value, REDACTED)
    return text


def open_connection(
    dsn: str, password: SecretStr | None, *, what: str, **kwargs: Any
) -> psycopg.Connection[Any]:
    """``psycopg.connect`` with the password passed apart and a clean error naming ``what``."""
    if password is not None:
        kwargs["password"] = password.get_secret_value()
    kwargs.setdefault("connect_timeout", 10)
    kwargs.setdefault("application_name", "meterstream")
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as exc:
        reason = redact(str(exc).strip(), [password])
        raise DbConnectError(f"cannot connect to {what} at {dsn}: {reason}") from None


def connect(postgres: PostgresSettings, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection as the writer role (``METERSTREAM_POSTGRES_DSN`` and its password)."""
    return open_connection(
        postgres.dsn, postgres.resolved_password(), what="the database", **kwargs
    )


def connect_admin(db: DbSettings, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection as the admin (``METERSTREAM_DB_ADMIN_DSN``), for ``meterstream db init``."""
    return open_connection(
        db.admin_dsn, db.resolved_admin_password(), what="the database as admin", **kwargs
    )
