"""`meterstream query`: SQL over the lake with DuckDB (filled in by the query work)."""

from __future__ import annotations

import click


@click.command("query")
@click.argument("sql")
def query_command(sql: str) -> None:
    """Run SQL over the lake (DuckDB) and print the result."""
    raise click.ClickException("not implemented yet")
