"""`meterstream sink scores|lake` and `meterstream lake compact`."""

from __future__ import annotations

import sys

import click

from meterstream.cliopts import overrides_from, settings_options


@click.group("sink")
def sink_command() -> None:
    """Write Kafka topics into stores, committing offsets only after durable writes."""


@sink_command.command("scores")
@settings_options("postgres", "db", "scores")
@click.pass_context
def sink_scores(ctx: click.Context) -> None:
    """Upsert anomaly scores (and live readings) into PostgreSQL/TimescaleDB.

    Consumes meter.anomaly-scores.v1 (and meter.readings.v1 unless --no-scores-readings) and
    writes the tables anomaly_scores and readings in batches, applying schema migrations first.
    Offsets are committed after each transaction; SIGTERM writes the last batch and exits 0.
    """
    from meterstream.clicontext import CliContext
    from sinks.scores.run import run_scores_sink

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    sys.exit(run_scores_sink(cli.settings))


@sink_command.command("lake")
@settings_options("s3", "lake")
@click.pass_context
def sink_lake(ctx: click.Context) -> None:
    """Write readings as Parquet files to the lake bucket (Hive partitions by date and hour).

    One spooled file per Kafka partition, closed on an event-hour change, a row cap or an age in
    broker time, uploaded under a name made of its first offset, then committed: after a crash
    each reading is in the lake once. SIGTERM uploads what is buffered and exits 0.
    """
    from meterstream.clicontext import CliContext
    from sinks.lake.run import run_lake_sink

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    sys.exit(run_lake_sink(cli.settings))


@click.group("lake")
def lake_command() -> None:
    """Maintain the lake: compaction of old days."""


@lake_command.command("compact")
@click.option("--date", "day", required=True, help="The UTC day to compact, YYYY-MM-DD.")
@click.option("--force", is_flag=True, help="Compact even a day younger than the safe age.")
@settings_options("s3", "lake")
@click.pass_context
def lake_compact(ctx: click.Context, day: str, force: bool) -> None:
    """Merge a day's small files into one file per hour (duplicates removed by Kafka offset).

    Only days older than METERSTREAM_LAKE_COMPACT_MIN_AGE_DAYS (lateness plus the readings
    topic's retention): a re-consumed record can then never re-create a merged file. Readers see
    the merged file next to the small ones for a moment; the lake views deduplicate.
    """
    from meterstream.clicontext import CliContext
    from sinks.lake.compact import compact_day

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    for line in compact_day(cli.settings, day, force=force, progress=click.echo):
        click.echo(line)
