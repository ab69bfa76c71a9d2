"""`meterstream query`: SQL over the lake with DuckDB (see docs/query.md)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meterstream.clicontext import CliContext
from meterstream.cliopts import overrides_from, settings_options
from meterstream.errors import MeterstreamError

if TYPE_CHECKING:
    import pyarrow as pa

pass_cli = click.make_pass_decorator(CliContext, ensure=True)

DEFAULT_LIMIT = 50


@click.command("query")
@click.argument("sql", required=False)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Rows printed in the table (0: all). --csv and --parquet always write every row.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write all rows as CSV to this file ('-': standard output) instead of a table.",
)
@click.option(
    "--parquet",
    "parquet_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write all rows as Parquet to this file instead of a table.",
)
@click.option("--list-views", is_flag=True, help="List the lake's views and their columns.")
@settings_options("s3", "lake")
@click.pass_context
@pass_cli
def query_command(
    cli: CliContext,
    ctx: click.Context,
    *,
    sql: str | None,
    limit: int,
    csv_path: Path | None,
    parquet_path: Path | None,
    list_views: bool,
) -> None:
    """Run SQL over the lake (DuckDB, in memory) and print the result.

    Views: readings_raw (every file row), readings (one row per meter_id and ts, first
    arrival wins), window_energy (Wh per meter and window), daily_energy (kWh per meter and
    UTC day). Timestamps are shown in UTC. Examples: docs/query.md.

    \b
      meterstream query "SELECT * FROM daily_energy ORDER BY day"
      meterstream query --csv - "SELECT * FROM readings WHERE date = DATE '2024-03-04'"
    """
    if sql is None and not list_views:
        raise click.UsageError("give SQL to run, or --list-views")
    if sql is not None and list_views:
        raise click.UsageError("give either SQL or --list-views, not both")
    if csv_path is not None and parquet_path is not None:
        raise click.UsageError("give either --csv or --parquet, not both")
    cli.overrides = overrides_from(ctx)

    from sinks.query.lake import describe_views, open_lake, run_query
    from sinks.query.render import render_table

    con = open_lake(cli.settings)
    try:
        if list_views:
            for name, columns in describe_views(con).items():
                click.echo(f"{name}:")
                for column, sql_type in columns:
                    click.echo(f"  {column:<40} {sql_type}")
            return
        assert sql is not None
        table = run_query(con, sql)
    finally:
        con.close()
    if csv_path is not None:
        _write_csv(table, csv_path)
    elif parquet_path is not None:
        _write_parquet(table, parquet_path)
    else:
        click.echo(render_table(table, limit))


def _write_csv(table: pa.Table, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    try:
        pacsv.write_csv(table, buffer)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise MeterstreamError(f"cannot write these columns as CSV: {exc}") from None
    if str(path) == "-":
        click.get_binary_stream("stdout").write(buffer.getvalue())
        return
    _write_file(path, buffer.getvalue())
    click.echo(f"wrote {table.num_rows} rows to {path}", err=True)


def _write_parquet(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    _write_file(path, buffer.getvalue())
    click.echo(f"wrote {table.num_rows} rows to {path}", err=True)


def _write_file(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise MeterstreamError(f"cannot write {path}: {exc.strerror or exc}") from None
