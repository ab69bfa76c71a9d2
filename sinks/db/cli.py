"""`meterstream db`: roles, schema migrations and their status.

``db init`` (as the admin) creates the roles, the extension and the grants and migrates;
``db migrate`` (as the writer) applies pending migrations; ``db status`` lists them. Each prints
one line per action; failures end in one ``error:`` line (see MeterstreamGroup) and a non-zero
exit, never with a password in either.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from meterstream.clicontext import CliContext
from meterstream.cliopts import overrides_from, settings_options
from meterstream.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# The same decorator as meterstream.cli's, defined here: importing meterstream.cli from a stage
# package would be circular (it imports this module to register the command).
pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def _settings(cli: CliContext) -> Settings:
    """The settings with this command's options applied."""
    cli.overrides = overrides_from(click.get_current_context())
    return cli.settings


@contextmanager
def _quiet_package_logs() -> Iterator[None]:
    # The commands print every action and warning themselves; the package's own log lines
    # (meant for the sinks' logs) would say the same things twice on the terminal.
    logger = logging.getLogger("sinks.db")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _database_errors(command: F) -> F:
    """psycopg errors that escape the package become one clean DbError line."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import psycopg

        from sinks.db.connect import redact
        from sinks.db.errors import DbError

        try:
            with _quiet_package_logs():
                return command(*args, **kwargs)
        except psycopg.Error as exc:
            # Settings were built before any connection was made, so this cannot fail anew.
            cli = click.get_current_context().find_object(CliContext)
            secrets = cli.settings.secrets() if cli is not None else []
            raise DbError(redact(f"database error: {exc}", secrets)) from None

    return wrapper  # type: ignore[return-value]


@click.group("db")
def db_command() -> None:
    """Prepare and inspect the PostgreSQL/TimescaleDB database.

    \b
      init     as the admin: roles, the timescaledb extension, grants, then migrate
      migrate  as the writer: apply pending schema migrations (sinks do this at start)
      status   list migrations (applied, pending, changed) and the schema path
    """


@db_command.command("init")
@settings_options("postgres", "db")
@pass_cli
@_database_errors
def init_command(cli: CliContext) -> None:
    """Create the writer and read-only roles, the extension and the grants; then migrate.

    Connects with METERSTREAM_DB_ADMIN_DSN (and METERSTREAM_DB_ADMIN_PASSWORD). The writer role
    (METERSTREAM_DB_WRITER_ROLE) gets METERSTREAM_POSTGRES_PASSWORD, the read-only role
    (METERSTREAM_DB_READER_ROLE) METERSTREAM_DB_READER_PASSWORD; given passwords are set on
    every run. The timescaledb extension is created when the server has it and
    METERSTREAM_DB_TIMESCALE is on. Idempotent: safe to run on every deploy.
    """
    from sinks.db.init import init_database

    settings = _settings(cli)
    report = init_database(settings.db, settings.postgres, echo=click.echo)
    applied = len(report.migration.applied) if report.migration else 0
    click.echo(f"db init done: {applied} migration(s) applied now")


@db_command.command("migrate")
@settings_options("postgres", "db")
@pass_cli
@_database_errors
def migrate_command(cli: CliContext) -> None:
    """Apply pending schema migrations as the writer (METERSTREAM_POSTGRES_DSN).

    Takes a PostgreSQL advisory lock, so it can run while sinks start; on TimescaleDB it also
    brings the retention, compression and refresh policies in line with METERSTREAM_DB_*.
    """
    from sinks.db.connect import connect
    from sinks.db.migrate import migrate

    settings = _settings(cli)
    with connect(settings.postgres) as conn:
        report = migrate(conn, settings.db)
    for label in report.applied:
        click.echo(f"migration {label}: applied ({report.path})")
    for line in report.policies:
        click.echo(line)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    total = len(report.already_applied) + len(report.applied)
    detail = f"{len(report.applied)} applied now" if report.applied else "nothing to do"
    click.echo(f"schema up to date: {total} migrations, path {report.path} ({detail})")


@db_command.command("status")
@click.option("--check", is_flag=True, help="Exit with status 1 if migrations are pending.")
@settings_options("postgres", "db")
@pass_cli
@_database_errors
def status_command(cli: CliContext, check: bool) -> None:
    """List the migrations (applied, pending, changed) and the schema path, read-only.

    Exits non-zero if an applied migration differs from its packaged file (and, with --check,
    if any migration is pending).
    """
    from sinks.db.connect import connect
    from sinks.db.errors import ChecksumMismatchError
    from sinks.db.migrate import status

    settings = _settings(cli)
    with connect(settings.postgres) as conn:
        schema = status(conn)
    if schema.path is None:
        click.echo("path: not chosen yet (no migration applied)")
    elif schema.timescaledb_version and schema.path == "timescaledb":
        click.echo(f"path: timescaledb (TimescaleDB {schema.timescaledb_version})")
    else:
        click.echo(f"path: {schema.path}")
    width = max((len(m.label) for m in schema.migrations), default=0)
    for migration in schema.migrations:
        when = f"  {migration.applied_at:%Y-%m-%d %H:%M:%S%z}" if migration.applied_at else ""
        click.echo(f"{migration.label:<{width}}  {migration.state:<8}{when}")
    applied = sum(m.state == "applied" for m in schema.migrations)
    click.echo(f"{applied} applied, {len(schema.pending)} pending")
    if schema.changed:
        raise ChecksumMismatchError(
            f"applied migration(s) {', '.join(schema.changed)} differ from the packaged files"
        )
    if check and schema.pending:
        raise click.exceptions.Exit(1)
