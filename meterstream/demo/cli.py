"""`meterstream demo`: the command-line entry of the demo (the work is in :mod:`.runner`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from meterstream.demo.plan import DEFAULT_SEED, DemoOptions


def _speed(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from connector.simulator.speed import parse_speed

    text = value.strip().lower()
    # The same form METERSTREAM_SIM_SPEED accepts: a plain number or "max".
    if not re.fullmatch(r"max|\d+(\.\d+)?", text):
        raise click.BadParameter("a number like 60 or 3600, or max")
    try:
        parse_speed(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return text


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    from meterstream.settings import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < 600:
        raise click.BadParameter("give at least 10m: the model needs some windows to learn")
    return seconds


@click.command("demo")
@click.option(
    "--homes", type=click.IntRange(1, 50), default=3, show_default=True, help="Simulated homes."
)
@click.option(
    "--speed",
    default="60",
    show_default=True,
    callback=_speed,
    help="Simulated seconds per real second (60: a minute per second), or max.",
)
@click.option(
    "--duration",
    default="6h",
    show_default=True,
    callback=_duration,
    help="Simulated time to generate, ending now (e.g. 90m, 6h, 2d). The connector stops "
    "at its end; the rest keep running until Ctrl-C or --exit-when-done.",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="Simulator seed: the same seed gives the same homes, readings and anomalies.",
)
@click.option(
    "--no-services",
    is_flag=True,
    help="Use the Kafka, PostgreSQL and S3 already configured (METERSTREAM_* variables, .env) "
    "instead of the local services of .meterstream/dev.env (started when not running).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".meterstream/demo"),
    show_default=True,
    help="Logs, worker state, lake spool and the injected-anomaly labels of the demo.",
)
@click.option(
    "--exit-when-done",
    is_flag=True,
    help="Stop everything cleanly once the connector finished and its last readings are "
    "scored and in the lake (for scripts and CI).",
)
def demo_command(
    *,
    homes: int,
    speed: str,
    duration: float,
    seed: int,
    no_services: bool,
    data_dir: Path,
    exit_when_done: bool,
) -> None:
    """The whole pipeline on this machine, without Docker: a first look at meterstream.

    Starts the local Kafka, PostgreSQL and MinIO (or uses those of .meterstream/dev.env, or
    with --no-services the configured ones), creates the demo's own topics (prefix
    demo.<run>.), and runs the connector on the simulator (homes with labelled anomalies,
    faster than real time), the worker and both sinks as child processes. The terminal shows
    the latest windows per home with their power, score, threshold and flags. Ctrl-C stops
    everything cleanly and prints where the data is: the psql and `meterstream query` lines
    to look at it.

    The model's warm-ups are shortened for the demo (see the line it prints), so flags can
    appear after about 1.5 simulated hours instead of a day.
    """
    from meterstream.demo.runner import run_demo

    options = DemoOptions(
        homes=homes,
        speed=speed,
        duration_s=duration,
        data_dir=data_dir,
        exit_when_done=exit_when_done,
        seed=seed,
    )
    sys.exit(run_demo(options, no_services=no_services))
