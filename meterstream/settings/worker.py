"""Settings of the Faust worker: windows, the model, state and operations."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from meterstream.settings.base import Duration, Group


class WorkerSettings(Group):
    """The Faust worker that windows readings and scores them."""

    app_id: str = Field(
        "meterstream-worker",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id: names the consumer group and the changelog topics, so two "
        "workers with different app ids score the same input independently.",
    )
    data_dir: Path = Field(
        Path("/var/lib/meterstream/worker"),
        description="Where the worker keeps its RocksDB tables.",
    )
    instance_id: str = Field(
        "",
        description="Static group membership id, stable per worker (e.g. the pod name): a "
        "restarted worker gets its partitions back at once. Empty: the host name.",
    )
    # -- windows -----------------------------------------------------------------------------
    window: Duration = Field(60.0, gt=0, description="Tumbling window length (event time).")
    lateness: Duration = Field(
        10.0, ge=0, description="How late (behind the meter's newest reading) a reading may arrive."
    )
    idle_timeout: Duration = Field(
        30.0, gt=0, description="Arrival-time silence after which a meter's windows may close."
    )
    tick_interval: Duration = Field(
        5.0, gt=0, description="How often the worker sends ticks to the partitions it owns."
    )
    energy_max_gap: Duration = Field(
        30.0, gt=0, description="Longest time one reading's power counts when integrating energy."
    )
    tz: str = Field(
        "Europe/Oslo", description="IANA time zone for the time-of-day features of the homes."
    )
    features: str = Field(
        "",
        description="Comma-separated feature names; empty: the default set (see docs/tuning.md).",
    )
    time_of_day: bool = Field(True, description="Add time-of-day features (sin/cos of the hour).")
    # -- the model -----------------------------------------------------------------------------
    engine: Literal["aws", "rrcf"] = Field(
        "aws", description="Random Cut Forest engine: aws (krcf, fast) or rrcf (reference)."
    )
    trees: int = Field(30, ge=1, le=500, description="Trees per forest.")
    sample_size: int = Field(128, ge=8, le=4096, description="Points each tree keeps.")
    shingle: int = Field(2, ge=1, le=16, description="Consecutive windows per forest point.")
    warmup: int = Field(
        128, ge=1, description="Windows a meter's model learns before it scores (output_after)."
    )
    time_decay: float = Field(
        1 / 4320,
        ge=0,
        description="aws engine: forgetting rate per window (1/4320: about 3 days of memory).",
    )
    seed: int = Field(42, description="Seed of every random choice the model makes.")
    threshold: Literal["adaptive", "static"] = Field(
        "adaptive",
        description="adaptive: learned per meter from recent scores; static: a fixed value.",
    )
    threshold_k: float = Field(
        4.0, gt=0, description="adaptive: flag scores above mean + k standard deviations."
    )
    threshold_value: float = Field(3.0, gt=0, description="static: the fixed score threshold.")
    threshold_warmup: int = Field(
        1440, ge=1, description="Scores an adaptive threshold learns before it flags anything."
    )
    threshold_half_life: float = Field(
        2880.0, gt=0, description="adaptive: windows after which an old score weighs half."
    )
    threshold_floor: float = Field(
        1.9,
        ge=0,
        description="adaptive: never flag below this score (aws score units; use 0 with rrcf).",
    )
    # -- state ---------------------------------------------------------------------------------
    snapshot_every: int = Field(
        60, ge=1, description="Windows between two model snapshots of a meter."
    )
    model_cache: int = Field(
        2000,
        ge=1,
        description="Meter models kept in memory (about 0.5 MB each); others are restored from "
        "their snapshots when needed (a few ms).",
    )
    outbox: int = Field(
        4, ge=1, le=64, description="Recent scores kept per meter and re-sent after a crash."
    )
    # -- operations ----------------------------------------------------------------------------
    batch_size: int = Field(
        2000,
        ge=1,
        description="Most records per fetch; each partition's share is applied as one batch "
        "(bigger: fewer per-batch costs).",
    )
    flush_interval: Duration = Field(
        5.0,
        ge=0,
        description="Longest time applied state waits before it is written to the tables "
        "(0: after every batch). Longer: fewer writes with many meters; a crash redoes more.",
    )
    web_port: int = Field(
        6066, ge=0, le=65535, description="Health and metrics port (/healthz, /metrics; 0 = off)."
    )
    session_timeout: Duration = Field(
        30.0,
        gt=0,
        description="Kafka session timeout; with static membership restarts are instant.",
    )
    commit_interval: Duration = Field(1.0, gt=0, description="How often offsets are committed.")
    rocksdb_block_cache_mb: int = Field(
        16, ge=1, description="RocksDB block cache per table partition (Faust's default is 2 GiB)."
    )
    rocksdb_write_buffer_mb: int = Field(
        8, ge=1, description="RocksDB write buffer per table partition."
    )
