"""`meterstream connector`: publish readings from Tibber, the simulator or a file replay."""

from __future__ import annotations

import logging
import sys
import time

import click

from meterstream.cliopts import overrides_from, settings_options

log = logging.getLogger(__name__)

CONNECTOR_GROUPS = ("tibber", "sim", "replay", "connector", "metrics")


@click.command("connector")
@settings_options(*CONNECTOR_GROUPS, top_level=("source", "max_clock_skew"))
@click.pass_context
def connector_command(ctx: click.Context) -> None:
    """Publish meter readings to Kafka (topic meter.readings.v1), keyed by meter_id.

    The source is chosen with --source / METERSTREAM_SOURCE:

    \b
      simulate  a realistic household simulator (the default; offline, seeded)
      tibber    Tibber Pulse live data over Tibber's GraphQL websocket
      replay    CSV, JSON lines or Parquet files, or the lake (s3://bucket/readings/)

    Every option below can also be set with the environment variable it names. Readings with
    no power, a non-finite power or a timestamp too far in the future are counted and logged,
    not published; duplicates by (meter_id, ts) are dropped. SIGTERM/SIGINT flush and exit 0.
    """
    from connector.run import run_connector
    from meterstream.clicontext import CliContext

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    started = time.monotonic()
    outcome = run_connector(cli.settings)
    click.echo(f"{outcome.summary} ({time.monotonic() - started:.1f} s)", err=True)
    sys.exit(outcome.exit_code)
