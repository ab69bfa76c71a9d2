"""Apply the schema migrations, under an advisory lock, and report the schema's state.

``migrate`` is what every sink runs at start (``METERSTREAM_DB_MIGRATE_ON_START``) and what
``meterstream db migrate`` runs. Several sinks starting together queue on a session-level
advisory lock: the first applies what is pending, the others then find nothing to do. Each
migration runs in its own transaction with its row in ``meterstream_schema_migrations``, so a
failure leaves the schema at the previous version. Applied migrations are verified against the
packaged files by checksum; a changed one stops everything (it would mean two databases built
from "the same" version differ).

The schema path (``timescaledb`` or ``postgresql``) is chosen at the first migration and recorded
in every row; later runs follow the recorded path whatever the settings say now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from meterstream.settings import DbSettings
from sinks.db.connect import connect
from sinks.db.errors import ChecksumMismatchError, MigrationError, TimescaleUnavailableError
from sinks.db.files import Migration, SchemaPath, packaged_migrations
from sinks.db.policies import apply_policies, plan_policies
from sinks.db.query import fetch_all, fetch_one
from sinks.db.timescale import (
    MIN_VERSION,
    available_version,
    format_version,
    installed_version,
    parse_version,
)

__all__ = [
    "LOCK_KEY",
    "MIGRATIONS_TABLE",
    "AppliedRow",
    "MigrationReport",
    "MigrationState",
    "SchemaStatus",
    "choose_path",
    "connect",
    "migrate",
    "status",
]

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "meterstream_schema_migrations"
# A fixed key for pg_advisory_lock: "meterstr" in ASCII. Advisory locks are per database, so
# sinks of different databases on one server do not wait for each other.
LOCK_KEY: Final = int.from_bytes(b"meterstr", "big")


@dataclass(frozen=True)
class MigrationReport:
    """What one ``migrate`` call did."""

    path: SchemaPath
    applied: list[str] = field(default_factory=list)  # labels applied now, e.g. "0001_tables"
    already_applied: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)  # policy changes, one line each
    warnings: list[str] = field(default_factory=list)
    timescaledb_version: str | None = None


@dataclass(frozen=True)
class AppliedRow:
    """One row of meterstream_schema_migrations."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    path: SchemaPath

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class MigrationState:
    """One migration as ``status`` sees it."""

    label: str
    state: Literal["applied", "pending", "changed", "unknown"]
    applied_at: datetime | None = None
    path: SchemaPath | None = None


@dataclass(frozen=True)
class SchemaStatus:
    path: SchemaPath | None  # None: nothing applied yet
    timescaledb_version: str | None
    migrations: list[MigrationState]

    @property
    def pending(self) -> list[str]:
        return [m.label for m in self.migrations if m.state == "pending"]

    @property
    def changed(self) -> list[str]:
        return [m.label for m in self.migrations if m.state == "changed"]


def _require_idle(conn: psycopg.Connection[Any]) -> None:
    # Our transactions must be our own: with one already open, conn.transaction() would only
    # make savepoints in it, and a commit here would commit the caller's work too.
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise MigrationError(
            "migrate needs a connection with no open transaction (commit or roll back first)"
        )


@contextmanager
def _advisory_lock(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Hold the migration lock for the block (session level: it outlives our transactions)."""
    with conn.transaction():
        got = fetch_one(conn, "SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
    if not (got and got[0]):
        log.info("another process is migrating the schema; waiting for it")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        yield
    finally:
        # A broken connection has lost the lock with its session; an error here must not hide
        # the one that brought us here.
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except psycopg.Error as exc:
            log.warning("could not release the migration lock: %s", exc)


def _table_exists(conn: psycopg.Connection[Any]) -> bool:
    row = fetch_one(conn, "SELECT to_regclass(%s) IS NOT NULL", (MIGRATIONS_TABLE,))
    return bool(row and row[0])


def _ensure_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                path text NOT NULL CHECK (path IN ('timescaledb', 'postgresql'))
            )"""
        ).format(sql.Identifier(MIGRATIONS_TABLE))
    )


def _applied_rows(conn: psycopg.Connection[Any]) -> list[AppliedRow]:
    rows = fetch_all(
        conn,
        sql.SQL("SELECT version, name, checksum, applied_at, path FROM {} ORDER BY version").format(
            sql.Identifier(MIGRATIONS_TABLE)
        ),
    )
    return [AppliedRow(int(v), str(n), str(c), a, p) for v, n, c, a, p in rows]


def _recorded_path(rows: list[AppliedRow]) -> SchemaPath | None:
    paths = {row.path for row in rows}
    if len(paths) > 1:
        raise MigrationError(f"{MIGRATIONS_TABLE} mixes schema paths {sorted(paths)}")
    return paths.pop() if paths else None


def _compare(
    rows: list[AppliedRow], migrations: tuple[Migration, ...]
) -> tuple[list[str], list[str]]:
    """(changed, unknown): applied rows whose file differs, and rows no packaged file matches."""
    by_version = {m.version: m for m in migrations}
    changed, unknown = [], []
    for row in rows:
        migration = by_version.get(row.version)
        if migration is None:
            unknown.append(row.label)
        elif migration.name != row.name or migration.for_path(row.path).checksum != row.checksum:
            changed.append(row.label)
    return changed, unknown


def choose_path(
    db: DbSettings,
    recorded: SchemaPath | None,
    installed: str | None,
    available: str | None,
) -> tuple[SchemaPath, list[str]]:
    """The schema path for this database, and warnings; refuses a TimescaleDB it cannot use.

    ``installed``: the timescaledb extension's version in this database; ``available``: the one
    the server could install. Pure, so the decision table is unit-tested.
    """
    warnings: list[str] = []
    if recorded == "timescaledb":
        if installed is None:
            raise TimescaleUnavailableError(
                "the schema was built for TimescaleDB but the timescaledb extension is no "
                "longer installed in this database"
            )
        if not db.timescale:
            warnings.append(
                "METERSTREAM_DB_TIMESCALE=false has no effect: the schema was built for "
                "TimescaleDB at its first migration and stays so"
            )
        return "timescaledb", warnings
    if recorded == "postgresql":
        if db.timescale and installed is not None:
            warnings.append(
                "the schema was built for plain PostgreSQL at its first migration and stays "
                "so, although TimescaleDB is installed now"
            )
        return "postgresql", warnings
    if not db.timescale:
        return "postgresql", warnings
    if installed is None:
        if available is not None:
            # Choosing plain PostgreSQL here would be permanent: almost surely not what a
            # TimescaleDB server with an uninitialised database wants.
            raise TimescaleUnavailableError(
                f"TimescaleDB {available} is available on this server but not installed in this "
                "database: run `meterstream db init` (as admin) first, or set "
                "METERSTREAM_DB_TIMESCALE=false for plain PostgreSQL"
            )
        return "postgresql", warnings
    if parse_version(installed) < MIN_VERSION:
        raise TimescaleUnavailableError(
            f"TimescaleDB {installed} is too old (meterstream needs "
            f"{format_version(MIN_VERSION)}+ for upserts into compressed chunks): upgrade it, "
            "or set METERSTREAM_DB_TIMESCALE=false for plain PostgreSQL"
        )
    return "timescaledb", warnings


def _apply(conn: psycopg.Connection[Any], migration: Migration, path: SchemaPath) -> None:
    file = migration.for_path(path)
    try:
        with conn.transaction():
            conn.execute(file.text)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (version, name, checksum, path) VALUES (%s, %s, %s, %s)"
                ).format(sql.Identifier(MIGRATIONS_TABLE)),
                (migration.version, migration.name, file.checksum, path),
            )
    except psycopg.OperationalError:
        raise  # the connection or the server failed, not the SQL: the caller may retry
    except psycopg.Error as exc:
        raise MigrationError(
            f"migration {file.filename} failed (schema left at the previous version): {exc}"
        ) from exc


def migrate(conn: psycopg.Connection[Any], db: DbSettings) -> MigrationReport:
    """Apply the pending migrations and sync the TimescaleDB policies; a no-op when up to date.

    ``conn`` may be in autocommit mode or not, but must have no open transaction; it is left
    with none. Raises :class:`ChecksumMismatchError` if an applied migration's file changed,
    :class:`TimescaleUnavailableError` if TimescaleDB is wanted but unusable, and
    :class:`MigrationError` when a migration's SQL fails. Connection trouble stays a
    :class:`psycopg.OperationalError` (transient: a sink retries it with backoff); nothing is
    half-applied either way.
    """
    _require_idle(conn)
    migrations = packaged_migrations()
    with _advisory_lock(conn):
        with conn.transaction():
            # Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide.
            _ensure_table(conn)
            rows = _applied_rows(conn)
            installed = installed_version(conn)
            available = available_version(conn)
        changed, unknown = _compare(rows, migrations)
        if changed:
            raise ChecksumMismatchError(
                f"applied migration(s) {', '.join(changed)} differ from the packaged files: "
                "applied migrations must never change; restore them and put the change in a "
                "new migration"
            )
        path, warnings = choose_path(db, _recorded_path(rows), installed, available)
        if unknown:
            warnings.append(
                f"the database has migration(s) {', '.join(unknown)} that this meterstream "
                "does not know (written by a newer version?)"
            )
        applied_versions = {row.version for row in rows}
        pending = [m for m in migrations if m.version not in applied_versions]
        if pending and applied_versions and pending[0].version < max(applied_versions):
            raise MigrationError(
                f"migration {pending[0].label} is missing although later ones are applied"
            )
        applied: list[str] = []
        for migration in pending:
            _apply(conn, migration, path)
            applied.append(migration.label)
            log.info("applied migration %s (%s)", migration.label, path)
        policies: list[str] = []
        if path == "timescaledb" and installed is not None:
            plan = plan_policies(db, parse_version(installed))
            warnings.extend(plan.warnings)
            try:
                with conn.transaction():
                    policies = apply_policies(conn, plan)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise MigrationError(f"setting the TimescaleDB policies failed: {exc}") from exc
    for warning in warnings:
        log.warning("%s", warning)
    return MigrationReport(
        path=path,
        applied=applied,
        already_applied=[row.label for row in rows],
        policies=policies,
        warnings=warnings,
        timescaledb_version=installed,
    )


def status(conn: psycopg.Connection[Any]) -> SchemaStatus:
    """Every known migration's state (applied, pending, changed) and the schema path; read-only."""
    _require_idle(conn)
    with conn.transaction():
        rows = _applied_rows(conn) if _table_exists(conn) else []
        installed = installed_version(conn)
    migrations = packaged_migrations()
    changed, unknown = _compare(rows, migrations)
    by_version = {row.version: row for row in rows}
    states: list[MigrationState] = []
    for migration in migrations:
        row = by_version.get(migration.version)
        if row is None:
            states.append(MigrationState(migration.label, "pending"))
        else:
            state: Literal["applied", "changed"] = "changed" if row.label in changed else "applied"
            states.append(MigrationState(row.label, state, row.applied_at, row.path))
    states.extend(
        MigrationState(row.label, "unknown", row.applied_at, row.path)
        for row in rows
        if row.label in unknown
    )
    return SchemaStatus(_recorded_path(rows), installed, states)
