"""`meterstream worker` (run the Faust worker) and `meterstream worker reset`."""

from __future__ import annotations

import sys

import click

from meterstream.cliopts import overrides_from, settings_options


@click.group("worker", invoke_without_command=True)
@settings_options("worker")
@click.pass_context
def worker_command(ctx: click.Context) -> None:
    """Window readings per meter, score them with Random Cut Forest, publish AnomalyScores.

    Consumes meter.readings.v1 and publishes to meter.anomaly-scores.v1. State (open windows,
    model snapshots, the applied offset, an outbox of recent scores) lives in Faust RocksDB
    tables under --worker-data-dir with changelogs in Kafka; a crash and a restart give the same
    scores. Run `meterstream topics create` first. Every option below can also be set with the
    environment variable it names. See docs/tuning.md for the model's knobs.
    """
    if ctx.invoked_subcommand is not None:
        return
    from meterstream.clicontext import CliContext
    from streams.run import run_worker

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    sys.exit(run_worker(cli.settings))


@worker_command.command("reset")
@click.option("--yes", is_flag=True, help="Do it without asking.")
@click.pass_context
def reset_command(ctx: click.Context, yes: bool) -> None:
    """Forget a model's state: consumer offsets, changelogs and local tables of the app id.

    For a new model version under the same app id. The worker must be stopped. The next start
    reads meter.readings.v1 from the beginning of its retention and learns afresh.
    """
    from meterstream.clicontext import CliContext
    from streams.reset import reset_worker

    cli = ctx.ensure_object(CliContext)
    cli.overrides = overrides_from(ctx)
    settings = cli.settings
    if not yes:
        click.confirm(
            f"Delete offsets, changelogs and local state of app id {settings.worker.app_id!r}?",
            abort=True,
        )
    for line in reset_worker(settings):
        click.echo(line)
