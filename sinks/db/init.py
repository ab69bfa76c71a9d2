"""``meterstream db init``: roles, the TimescaleDB extension, grants, then the migrations.

Runs as the admin (``METERSTREAM_DB_ADMIN_DSN``); idempotent, so it is safe to run on every
deploy. The writer role (the sinks' login, ``METERSTREAM_POSTGRES_DSN``'s user) gets CREATE on
the database and on schema ``public`` and runs the migrations, so it owns the tables and the
views (and TimescaleDB's policies run as it). The read-only role gets USAGE and SELECT on what
the writer owns now, and default privileges make whatever the writer creates later readable too.

Passwords never travel as text: libpq turns each into a SCRAM verifier on this side
(``PQencryptPasswordConn``), so neither the server's statement log nor an error message can
show one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from meterstream.errors import ConfigError
from meterstream.settings import DbSettings, PostgresSettings
from sinks.db.connect import connect_admin, redact
from sinks.db.errors import DbError
from sinks.db.migrate import MigrationReport, migrate
from sinks.db.query import fetch_all, fetch_one
from sinks.db.timescale import available_version, installed_version

log = logging.getLogger(__name__)

SCHEMA: Final = "public"
MAX_IDENTIFIER_BYTES: Final = 63  # PostgreSQL silently truncates longer names (NAMEDATALEN - 1)

Echo = Callable[[str], None]


@dataclass
class InitReport:
    """What ``db init`` did, one line per action, and the migration it ran."""

    actions: list[str] = field(default_factory=list)
    migration: MigrationReport | None = None


def check_role_names(db: DbSettings) -> None:
    """Refuse role settings PostgreSQL would not take as given (the pattern is checked already)."""
    if db.writer_role == db.reader_role:
        raise ConfigError(
            "METERSTREAM_DB_WRITER_ROLE and METERSTREAM_DB_READER_ROLE must name different roles"
        )
    for variable, name in (
        ("METERSTREAM_DB_WRITER_ROLE", db.writer_role),
        ("METERSTREAM_DB_READER_ROLE", db.reader_role),
    ):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise ConfigError(f"{variable}: at most {MAX_IDENTIFIER_BYTES} characters")


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return fetch_one(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)) is not None


def ensure_role(
    conn: psycopg.Connection[Any], role: str, password: SecretStr | None, *, kind: str
) -> str:
    """Create ``role`` (LOGIN) if missing, set its password if one is given; one line saying so."""
    ident = sql.Identifier(role)
    exists = _role_exists(conn, role)
    with conn.transaction():
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(ident))
        else:
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(ident))
        if password is not None and password.get_secret_value():
            # A SCRAM verifier (or md5, whatever the server's password_encryption says) made on
            # this side: the server, its logs and any error see only the hash.
            verifier = conn.pgconn.encrypt_password(
                password.get_secret_value().encode(), role.encode()
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    ident, sql.Literal(verifier.decode("ascii"))
                )
            )
    state = "created" if not exists else "exists"
    if password is not None and password.get_secret_value():
        return f"{kind} role {role}: {state}, LOGIN, password set"
    return (
        f"{kind} role {role}: {state}, LOGIN, no password given (it can log in only where "
        "pg_hba.conf trusts it)"
    )


def ensure_extension(conn: psycopg.Connection[Any], db: DbSettings) -> str:
    """``CREATE EXTENSION timescaledb`` when it is wanted and the server has it."""
    if not db.timescale:
        return "timescaledb: off (METERSTREAM_DB_TIMESCALE=false), plain PostgreSQL"
    installed = installed_version(conn)
    if installed is not None:
        return f"timescaledb {installed}: already installed"
    available = available_version(conn)
    if available is None:
        return "timescaledb: not available on this server, plain PostgreSQL"
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        raise DbError(
            f"CREATE EXTENSION timescaledb failed: {exc} (the server must load it: "
            "shared_preload_libraries = 'timescaledb'; or set METERSTREAM_DB_TIMESCALE=false)"
        ) from exc
    return f"timescaledb {installed_version(conn)}: extension created"


def grant_base(conn: psycopg.Connection[Any], db: DbSettings, database: str) -> list[str]:
    """Database and schema privileges of both roles, and the reader's default privileges."""
    writer, reader = sql.Identifier(db.writer_role), sql.Identifier(db.reader_role)
    dbname, schema = sql.Identifier(database), sql.Identifier(SCHEMA)
    with conn.transaction():
        # TEMPORARY: a sink may stage a batch in a temp table before upserting it.
        conn.execute(
            sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO {}").format(dbname, writer)
        )
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(schema, writer))
        # PostgreSQL 15 made this the default; before it, every role (the reader too) could
        # create tables in public.
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(dbname, reader))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, reader))
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
            ).format(writer, schema, reader)
        )
    return [
        f"grant {db.writer_role}: CONNECT, CREATE, TEMPORARY on database {database}; "
        f"USAGE, CREATE on schema {SCHEMA}",
        f"revoke CREATE on schema {SCHEMA} from PUBLIC (the PostgreSQL 15 default)",
        f"grant {db.reader_role}: CONNECT on database {database}; USAGE on schema {SCHEMA}; "
        f"SELECT on the tables and views {db.writer_role} will create",
    ]


def grant_existing(conn: psycopg.Connection[Any], db: DbSettings) -> str:
    """SELECT for the reader on every table and view the writer owns in the schema now."""
    relations = [
        str(row[0])
        for row in fetch_all(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = %s) ORDER BY c.relname",
            (SCHEMA, db.writer_role),
        )
    ]
    if relations:
        with conn.transaction():
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.SQL(", ").join(sql.Identifier(SCHEMA, name) for name in relations),
                    sql.Identifier(db.reader_role),
                )
            )
    return (
        f"grant {db.reader_role}: SELECT on {len(relations)} tables and views of "
        f"{db.writer_role} ({', '.join(relations) or 'none yet'})"
    )


@contextmanager
def acting_as(conn: psycopg.Connection[Any], role: str, admin: str) -> Iterator[None]:
    """``SET ROLE role`` for the block (so what it creates is owned by ``role``)."""
    if role == admin:
        yield
        return
    try:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    except psycopg.Error as exc:
        raise DbError(
            f"the admin role {admin} cannot act as {role} (SET ROLE failed: {exc}); connect as "
            f"a superuser, or GRANT {role} TO {admin}"
        ) from exc
    try:
        yield
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("RESET ROLE")


def _dsn_notes(db: DbSettings, postgres: PostgresSettings, database: str) -> list[str]:
    """Mismatches between the sinks' DSN and what init prepares, worth a line."""
    try:
        params = conninfo_to_dict(postgres.dsn)
    except psycopg.ProgrammingError:
        return [f"note: METERSTREAM_POSTGRES_DSN cannot be parsed: {postgres.dsn}"]
    notes = []
    user = params.get("user")
    if user is not None and user != db.writer_role:
        notes.append(
            f"note: METERSTREAM_POSTGRES_DSN logs in as {user}, not as the writer role "
            f"{db.writer_role}"
        )
    dbname = params.get("dbname")
    if dbname is not None and dbname != database:
        notes.append(
            f"note: METERSTREAM_POSTGRES_DSN names database {dbname}; init prepared {database}"
        )
    return notes


def init_database(
    db: DbSettings, postgres: PostgresSettings, echo: Echo | None = None
) -> InitReport:
    """Roles, extension, grants and migrations; ``echo`` gets each action's line as it is done."""
    check_role_names(db)
    report = InitReport()

    def done(line: str) -> None:
        report.actions.append(line)
        if echo is not None:
            echo(line)

    secrets = [db.resolved_admin_password(), postgres.resolved_password()]
    secrets.append(db.resolved_reader_password())
    with connect_admin(db, autocommit=True) as conn:
        try:
            row = fetch_one(conn, "SELECT current_user, current_database()") or ("?", "?")
            admin, database = str(row[0]), str(row[1])
            done(f"connected to database {database} as {admin}")
            if db.writer_role == admin:
                done(f"writer role {admin}: the admin's own role, left as it is")
            else:
                done(ensure_role(conn, db.writer_role, postgres.resolved_password(), kind="writer"))
            if db.reader_role == admin:
                raise ConfigError(
                    "METERSTREAM_DB_READER_ROLE names the admin role; the reader must be a "
                    "role of its own"
                )
            done(ensure_role(conn, db.reader_role, db.resolved_reader_password(), kind="reader"))
            done(ensure_extension(conn, db))
            for line in grant_base(conn, db, database):
                done(line)
            with acting_as(conn, db.writer_role, admin):
                report.migration = migrate(conn, db)
            for label in report.migration.applied:
                done(f"migration {label}: applied ({report.migration.path})")
            for line in report.migration.policies:
                done(line)
            for warning in report.migration.warnings:
                done(f"warning: {warning}")
            done(
                f"schema: {len(report.migration.already_applied) + len(report.migration.applied)} "
                f"migrations applied, path {report.migration.path}"
            )
            done(grant_existing(conn, db))
            for note in _dsn_notes(db, postgres, database):
                done(note)
        except psycopg.Error as exc:
            raise DbError(redact(f"db init failed: {exc}", secrets)) from None
    return report
