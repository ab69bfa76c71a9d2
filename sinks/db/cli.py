"""`meterstream db`: roles, schema migrations and their status (filled in by the db work)."""

from __future__ import annotations

import click


@click.group("db")
def db_command() -> None:
    """Prepare and inspect the PostgreSQL/TimescaleDB database."""
