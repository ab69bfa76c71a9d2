"""Errors of the database layer; each message says what to do, and none carries a password."""

from __future__ import annotations

from meterstream.errors import ConfigError, MeterstreamError


class DbError(MeterstreamError):
    """The database refused or failed an operation; the message names it and the server's reason."""


class DbConnectError(DbError):
    """The database cannot be reached or refused the login: check the DSN, password and server."""


class MigrationError(DbError):
    """A schema migration could not be applied, or the applied schema is not what the code expects."""


class ChecksumMismatchError(MigrationError):
    """An applied migration file was changed afterwards: applied migrations are immutable.

    Restore the file as it was (see ``meterstream db status``) and put the change in a new,
    higher-numbered migration.
    """


class TimescaleUnavailableError(ConfigError):
    """TimescaleDB is wanted but unusable here: install/upgrade it, or turn it off.

    The fix is ``meterstream db init`` (creates the extension), a newer TimescaleDB, or
    ``METERSTREAM_DB_TIMESCALE=false`` for plain PostgreSQL.
    """
