"""The ``meterstream`` command.

One entry point with a subcommand per process or tool. Settings are built once here and
each command hands its components the slice they need; logging is configured once here.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from meterstream import __version__
from meterstream.clicontext import CliContext
from meterstream.errors import ConfigError, MeterstreamError
from meterstream.settings import env_files

log = logging.getLogger("meterstream")

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes follow sysexits.h where one fits, so supervisors can tell the cases apart.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78  # EX_CONFIG


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class MeterstreamGroup(click.Group):
    """Turns meterstream's own errors into one clear line and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(str(exc), EXIT_CONFIG)
        except MeterstreamError as exc:
            _fail(str(exc), EXIT_FAILURE)
        return None


@click.group(cls=MeterstreamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="meterstream")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Smart-meter readings to anomaly scores and a queryable lake, on Kafka and Faust.

    Settings come from METERSTREAM_* environment variables, then .env, then
    .meterstream/dev.env (written by `meterstream dev services up`); see `meterstream config`.
    """
    ctx.ensure_object(CliContext)


@main.command()
def version() -> None:
    """Print meterstream's version and those of the libraries it is built on."""
    from importlib import metadata

    click.echo(f"meterstream {__version__}")
    for package in ("faust-streaming", "aiokafka", "confluent-kafka", "fastavro", "krcf", "rrcf"):
        try:
            click.echo(f"  {package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            click.echo(f"  {package} (not installed)")
    click.echo(f"  python {sys.version.split()[0]}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as a JSON object.")
@pass_cli
def config(cli: CliContext, as_json: bool) -> None:
    """Print the effective settings, secrets masked, and where they came from."""
    masked = cli.settings.masked()
    if as_json:
        click.echo(json.dumps(masked, indent=2))
        return
    files = env_files()
    click.echo("# precedence: environment > .env > .meterstream/dev.env > defaults")
    click.echo(f"# dotenv files read: {', '.join(map(str, files)) or 'none'}")
    width = max(map(len, masked))
    for name, value in masked.items():
        click.echo(f"{name:<{width}} = {value}")


@main.group()
def topics() -> None:
    """Create and check meterstream's Kafka topics."""


@topics.command("create")
@pass_cli
def topics_create(cli: CliContext) -> None:
    """Create every topic (and the worker's changelogs) idempotently; refuse partition mismatches.

    Partitions, replication, retention and compression come from METERSTREAM_KAFKA_*; the
    changelog topics are those of METERSTREAM_WORKER_APP_ID. Existing topics get their
    configs aligned; a different partition count is an error, never silently changed.
    """
    from meterstream.kafka.topics import ensure_topics

    settings = cli.settings
    started = time.monotonic()
    results = ensure_topics(settings)
    for result in results:
        spec = result.spec
        detail = f" ({', '.join(result.changed_configs)})" if result.changed_configs else ""
        click.echo(
            f"{result.outcome:<8} {spec.name}  partitions={spec.partitions} "
            f"rf={spec.replication_factor}{detail}"
        )
    created = sum(r.outcome == "created" for r in results)
    click.echo(
        f"{len(results)} topics checked on {settings.kafka.bootstrap_servers}: {created} created, "
        f"{len(results) - created} already there ({time.monotonic() - started:.1f} s)"
    )


@main.group()
def dev() -> None:
    """Developer tools: local services without Docker."""


@dev.group()
def services() -> None:
    """Run Kafka, PostgreSQL and MinIO as local processes (no Docker needed)."""


def _stack() -> Any:
    from meterstream.devservices.stack import DevStack

    return DevStack(Path(".meterstream"))


@services.command("up")
@click.option(
    "--registry",
    is_flag=True,
    help="Also run a Confluent-compatible schema registry (Apicurio) and use the registry wire format.",
)
def services_up(registry: bool) -> None:
    """Start the services in the background and write their endpoints to .meterstream/dev.env."""
    endpoints = _stack().up(progress=click.echo, with_registry=registry)
    click.echo("\nEndpoints (written to .meterstream/dev.env, read by every meterstream command):")
    for key, value in sorted(endpoints.items()):
        shown = "**********" if key.endswith(("PASSWORD", "SECRET_KEY")) else value
        click.echo(f"  {key}={shown}")


@services.command("down")
@click.option("--wipe", is_flag=True, help="Also delete the services' data and logs.")
def services_down(wipe: bool) -> None:
    """Stop the services started by `up` (data is kept unless --wipe)."""
    _stack().down(wipe=wipe, progress=click.echo)


@services.command("status")
def services_status() -> None:
    """Tell which local services run."""
    any_running = False
    for status in _stack().status():
        any_running |= status.running
        state = f"running (pid {status.pid})" if status.running else "stopped"
        click.echo(f"{status.name:<9} {state}  {status.log_path or ''}")
    if not any_running:
        click.echo("start them with: meterstream dev services up")


@services.command("prepare")
@click.argument(
    "what", type=click.Choice(["kafka", "minio", "postgres", "registry", "all"]), default="all"
)
def services_prepare(what: str) -> None:
    """Download or build what the services need, without starting them (CI caches this)."""
    from meterstream.devservices.kafka import KAFKA_VERSION, kafka_libs
    from meterstream.devservices.minio import MINIO_VERSION, minio_binary
    from meterstream.devservices.registry import APICURIO_VERSION, apicurio_jar
    from meterstream.devservices.tools import postgres_bindir

    steps: dict[str, Callable[[], object]] = {
        "kafka": kafka_libs,
        "minio": minio_binary,
        "postgres": postgres_bindir,
        "registry": apicurio_jar,
    }
    labels = {
        "kafka": f"Apache Kafka {KAFKA_VERSION} jars (Maven Central)",
        "minio": f"MinIO {MINIO_VERSION} (go install)",
        "postgres": "PostgreSQL server binaries",
        "registry": f"Apicurio Registry {APICURIO_VERSION} (Maven Central)",
    }
    for name in steps if what == "all" else [what]:
        started = time.monotonic()
        location = steps[name]()
        click.echo(f"{labels[name]}: {location} ({time.monotonic() - started:.1f} s)")


def _register_stage_commands() -> None:
    # Each stage owns its command; importing them is cheap (their heavy imports are lazy).
    from connector.cli import connector_command
    from meterstream.demo.cli import demo_command
    from meterstream.dlq import dlq_command
    from sinks.cli import lake_command, sink_command
    from sinks.db.cli import db_command
    from sinks.query.cli import query_command
    from streams.cli import worker_command

    main.add_command(connector_command)
    main.add_command(worker_command)
    main.add_command(dlq_command)
    main.add_command(db_command)
    main.add_command(query_command)
    main.add_command(sink_command)
    main.add_command(lake_command)
    main.add_command(demo_command)


_register_stage_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
