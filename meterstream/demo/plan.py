"""What one demo run is: its names, its files, its simulated time span and its settings.

Every run gets its own id (the UTC start time), and every Kafka name of the run carries it:
topics ``demo.<run>.meter.readings.v1`` ..., the worker's app id ``demo.<run>.worker`` (so its
changelogs and model id too) and the sinks' consumer groups. A run therefore never reads a
user's stack or an earlier demo: an earlier run's readings cover the same simulated hours (the
simulation always ends "now"), so a worker that remembered them would drop the new ones as late.

The simulated span ends at the minute the demo starts and reaches ``duration`` back: data that
looks current (Grafana's "last 6 hours" shows it) and that never lies in the future, whatever
the speed. The start is on a whole minute, so the last reading closes the last window exactly at
the end of the span, which is how the demo knows that everything was scored.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Topics are created with two partitions: enough to show partitioning, few enough that the lake
# sink writes a handful of files rather than one per partition and hour of a 4-partition stack.
DEMO_PARTITIONS = 2
# The lake of every demo run; object names carry the run's topic, so runs never overwrite.
DEMO_BUCKET = "meterstream-demo"
# Seed 102 places labelled anomalies of three kinds (phase imbalance, a stuck appliance, voltage
# sags) after the model's demo warm-up in the default 6 h of three homes; the schedule is relative
# to the start, so it holds whenever the demo runs (checked with HouseholdSimulator.labels_until).
DEFAULT_SEED = 102

# Demo-sized model warm-ups (production: 128 windows and 1,440 scores, about a day): a few
# minutes at the default speed until flags can appear instead of half an hour.
DEMO_WARMUP = 40
DEMO_THRESHOLD_WARMUP = 50
PRODUCTION_WARMUP = 128
PRODUCTION_THRESHOLD_WARMUP = 1440
WINDOW_S = 60.0

# Lake files close after this much broker time: the lake fills visibly while the demo runs, and
# the last files are uploaded within seconds once the connector is done.
LAKE_FILE_MAX_AGE = "10s"


@dataclass(frozen=True)
class DemoOptions:
    """The command-line choices of `meterstream demo`."""

    homes: int
    speed: str  # a factor like "60", or "max"
    duration_s: float
    data_dir: Path
    exit_when_done: bool
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class ChildSpec:
    """One child process: its name, its meterstream subcommand and its log file."""

    name: str
    args: tuple[str, ...]
    log_path: Path
    metrics_port: int = 0  # 0: no /metrics server (the demo does not read this child's)
    stop_timeout_s: float = 30.0


@dataclass(frozen=True)
class DemoPlan:
    """Names, paths and settings of one run, fixed before anything starts."""

    options: DemoOptions
    run_id: str
    sim_start: datetime

    @classmethod
    def new(cls, options: DemoOptions, now: datetime) -> DemoPlan:
        end = now.astimezone(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(seconds=options.duration_s)
        return cls(options, now.astimezone(UTC).strftime("%Y%m%d-%H%M%S"), start)

    # -- names -------------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"demo.{self.run_id}."

    @property
    def app_id(self) -> str:
        return f"{self.prefix}worker"

    @property
    def model_pattern(self) -> str:
        """SQL LIKE pattern of this run's model ids (``{app_id}-{fingerprint}``)."""
        return f"{self.app_id}-%"

    @property
    def scores_group(self) -> str:
        return f"{self.prefix}sink-scores"

    @property
    def lake_group(self) -> str:
        return f"{self.prefix}sink-lake"

    @property
    def bucket(self) -> str:
        return DEMO_BUCKET

    # -- time --------------------------------------------------------------------------------
    @property
    def sim_end(self) -> datetime:
        return self.sim_start + timedelta(seconds=self.options.duration_s)

    @property
    def speed_factor(self) -> float | None:
        """Simulated seconds per wall-clock second; None for "as fast as possible"."""
        text = self.options.speed.strip().lower()
        return None if text == "max" else float(text)

    @property
    def flags_after_windows(self) -> int:
        """Windows a meter needs before its first flag is possible (shingle of 2 included)."""
        return DEMO_WARMUP + 1 + DEMO_THRESHOLD_WARMUP

    # -- files -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.options.data_dir

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def worker_dir(self) -> Path:
        return self.data_dir / "worker"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "lake-spool"

    @property
    def connector_dir(self) -> Path:
        return self.data_dir / "connector"

    @property
    def labels_file(self) -> Path:
        return self.data_dir / "labels.jsonl"

    # -- processes ---------------------------------------------------------------------------
    def settings_env(self) -> dict[str, str]:
        """The METERSTREAM_* variables every process of the run shares (endpoints aside)."""
        return {
            "METERSTREAM_KAFKA_TOPIC_PREFIX": self.prefix,
            "METERSTREAM_KAFKA_PARTITIONS": str(DEMO_PARTITIONS),
            # -- the connector on the simulator
            "METERSTREAM_SOURCE": "simulate",
            "METERSTREAM_SIM_METERS": str(self.options.homes),
            "METERSTREAM_SIM_SPEED": self.options.speed,
            "METERSTREAM_SIM_START": self.sim_start.isoformat(),
            "METERSTREAM_SIM_DURATION": f"{self.options.duration_s:g}",
            "METERSTREAM_SIM_SEED": str(self.options.seed),
            "METERSTREAM_SIM_ANOMALIES": "all",
            "METERSTREAM_SIM_LABELS_FILE": str(self.labels_file.resolve()),
            "METERSTREAM_CONNECTOR_DATA_DIR": str(self.connector_dir.resolve()),
            # -- the worker: demo warm-ups, and quick ticks so that the last windows close a
            # few seconds after the connector stops instead of half a minute
            "METERSTREAM_WORKER_APP_ID": self.app_id,
            "METERSTREAM_WORKER_INSTANCE_ID": f"{self.app_id}-1",
            "METERSTREAM_WORKER_DATA_DIR": str(self.worker_dir.resolve()),
            "METERSTREAM_WORKER_WINDOW": f"{WINDOW_S:g}s",
            "METERSTREAM_WORKER_WARMUP": str(DEMO_WARMUP),
            "METERSTREAM_WORKER_THRESHOLD_WARMUP": str(DEMO_THRESHOLD_WARMUP),
            "METERSTREAM_WORKER_TICK_INTERVAL": "1s",
            "METERSTREAM_WORKER_IDLE_TIMEOUT": "3s",
            "METERSTREAM_WORKER_SESSION_TIMEOUT": "6s",
            "METERSTREAM_WORKER_WEB_PORT": "0",
            # -- the sinks: the run's groups, the demo bucket, short sessions for a quick start
            "METERSTREAM_SCORES_GROUP_ID": self.scores_group,
            "METERSTREAM_SCORES_SESSION_TIMEOUT": "6s",
            "METERSTREAM_LAKE_GROUP_ID": self.lake_group,
            "METERSTREAM_LAKE_SESSION_TIMEOUT": "6s",
            "METERSTREAM_LAKE_BUCKET": self.bucket,
            "METERSTREAM_LAKE_SPOOL_DIR": str(self.spool_dir.resolve()),
            "METERSTREAM_LAKE_FILE_MAX_AGE": LAKE_FILE_MAX_AGE,
            # Metrics only on loopback: a demo should not open ports to the network.
            "METERSTREAM_METRICS_HOST": "127.0.0.1",
        }

    def children(self, connector_port: int, lake_port: int) -> list[ChildSpec]:
        """The children in start order: sinks first, so nothing waits for a reader."""
        logs = self.logs_dir
        return [
            ChildSpec("scores sink", ("sink", "scores"), logs / "sink-scores.log"),
            ChildSpec("lake sink", ("sink", "lake"), logs / "sink-lake.log", lake_port),
            # Faust takes longest to stop: it commits and closes its RocksDB tables.
            ChildSpec("worker", ("worker",), logs / "worker.log", stop_timeout_s=60.0),
            ChildSpec("connector", ("connector",), logs / "connector.log", connector_port),
        ]


def child_argv(spec: ChildSpec) -> list[str]:
    """How a child is started: through the launcher that ties its life to the demo's."""
    return [sys.executable, "-m", "meterstream.demo.child", str(os.getpid()), *spec.args]
