"""Sink throughput and visibility latency against real Kafka, PostgreSQL and S3 (MinIO).

Services: the broker named by METERSTREAM_KAFKA_BOOTSTRAP_SERVERS, the PostgreSQL server of
METERSTREAM_POSTGRES_DSN (+ METERSTREAM_POSTGRES_PASSWORD) and the S3 endpoint of
METERSTREAM_S3_ENDPOINT (+ METERSTREAM_S3_ACCESS_KEY / _SECRET_KEY); each one not given is started
as a local process (meterstream.devservices) and stopped at exit. Every run gets its own topics,
consumer group, database (created and dropped) and bucket (emptied and removed).

Throughput: the connector's simulator publishes the readings (``--meters``, 2 s apart, full
speed) and the bench publishes ``--scores`` AnomalyScore records, plus one reading per partition an
event day later (it closes the last open lake file by the hour rule, so the lake commits all the
rest without waiting for a file age). Then one ``meterstream sink lake`` process and afterwards one
``meterstream sink scores`` process (readings + anomaly_scores tables), each with the default
settings, drain that backlog; the rate is the slope of the sink's committed offsets between 10 %
and 90 % of its input, sampled every 0.1 s (start-up, migrations and the group join are left
out). The lake commits once per uploaded file, so its slope is measured between upload steps.

Visibility (live): records are published at ``--live-rate`` per second while the sink runs.

* PostgreSQL: readings (the simulator's, event time = wall time) and one score per reading, both
  at the rate. Every ``--live-rate // 200``-th record of each topic is sampled: its delivery report
  gives partition, offset and broker timestamp (LogAppendTime for readings, the producer's
  CreateTime for scores). Every 50 ms the bench looks the pending samples up by primary key; the
  latency of a sample is the wall time at the start of the first query that saw it minus its
  broker timestamp (50 ms resolution).
* Lake: readings at the rate, a tick on every partition every ``--tick-every`` seconds (as a
  worker sends), ``METERSTREAM_LAKE_FILE_MAX_AGE=--lake-max-age``. The bucket is listed every
  0.2 s; afterwards every listed object is read, and a row's latency is the time its object was
  first listed minus the row's ``kafka_timestamp``. Bound: a file closes at the first record or
  tick whose broker time is FILE_MAX_AGE after the file's first row, so a row waits at most
  FILE_MAX_AGE + the gap to the next record or tick on its partition + upload + 0.2 s listing.

Peak RSS is each sink process's VmHWM. "CPU" is the sink process's user + system time per wall
second over the measured span (librdkafka's threads included) and, for a local PostgreSQL, the same
for the sink's server backend: together they show whether a sink is CPU-bound or waiting.

    python -m bench.sinks                  # throughput (lake, postgres), then both live runs
    python -m bench.sinks --only lake --no-live
    python -m bench.sinks --no-live --instances 2      # two sink processes in one group
    python -m bench.sinks --no-live --py-spy ~/py-spy  # where the time goes (10 % to 90 %)
    python -m bench.sinks --profile        # also drain the backlog in-process under cProfile
    python -m bench.sinks --smoke          # a tiny run (< 60 s) that checks everything works
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import logging
import os
import pstats
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, Producer, TopicPartition
from minio import Minio

from bench._broker import broker
from bench.worker import _publish, fresh_run, record_count
from meterstream.kafka.clients import producer_config
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import READINGS, SCORES, tick_headers
from streams.core.features import DEFAULT_FEATURES

SIM_START_US = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z, as bench.worker publishes
SIM_INTERVAL_S = 2.0
DAY_US = 86_400_000_000
LAKE_TARGET = 100_000
POSTGRES_TARGET = 50_000
SCORES_P99_TARGET_S = 2.0
# The worker's default feature names, so synthetic scores look like real ones.
FEATURES = (*DEFAULT_FEATURES, "tod_sin", "tod_cos")


# -- services -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stores:
    bootstrap: str
    pg_dsn: str  # a database on the server the bench may run CREATE DATABASE from
    pg_password: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    started: tuple[str, ...]  # the services this script started (the others came from env)


def _stop_service(service: Any) -> None:
    from meterstream.devservices.process import stop_process_group

    if service.stop_command:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(list(service.stop_command), capture_output=True, timeout=20, check=False)
    stop_process_group(service.pid)


def _scratch(stack: contextlib.ExitStack, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"meterstream-bench-{name}-"))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


@contextlib.contextmanager
def stores() -> Iterator[Stores]:
    started = []
    with contextlib.ExitStack() as stack:
        stack.callback(_remove_run_dirs)
        if not os.environ.get("METERSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
            started.append("kafka")
        bootstrap = stack.enter_context(broker(heap="1g"))
        if os.environ.get("METERSTREAM_POSTGRES_DSN"):
            dsn = os.environ["METERSTREAM_POSTGRES_DSN"]
            password = os.environ.get("METERSTREAM_POSTGRES_PASSWORD", "")
        else:
            from meterstream.devservices.postgres import reachable_data_dir, start_postgres

            scratch = _scratch(stack, "pg")
            data_dir = reachable_data_dir(scratch, persistent=False)
            if data_dir != scratch:
                stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
            service = start_postgres(data_dir)
            stack.callback(_stop_service, service)
            dsn = service.env["METERSTREAM_POSTGRES_DSN"]
            password = service.env["METERSTREAM_POSTGRES_PASSWORD"]
            started.append("postgres")
        if os.environ.get("METERSTREAM_S3_ENDPOINT"):
            endpoint = os.environ["METERSTREAM_S3_ENDPOINT"]
            access = os.environ.get("METERSTREAM_S3_ACCESS_KEY", "meterstream")
            secret = os.environ.get("METERSTREAM_S3_SECRET_KEY", "meterstream-secret")
        else:
            from meterstream.devservices.minio import start_minio

            service = start_minio(_scratch(stack, "minio"))
            stack.callback(_stop_service, service)
            endpoint = service.env["METERSTREAM_S3_ENDPOINT"]
            access = service.env["METERSTREAM_S3_ACCESS_KEY"]
            secret = service.env["METERSTREAM_S3_SECRET_KEY"]
            started.append("minio")
        yield Stores(bootstrap, dsn, password, endpoint, access, secret, tuple(started))


def _pg_connect(stores: Stores, dsn: str | None = None, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(dsn or stores.pg_dsn, password=stores.pg_password or None, **kwargs)


@contextlib.contextmanager
def database(stores: Stores, tag: str) -> Iterator[tuple[str, bool]]:
    """A fresh database (DSN, TimescaleDB installed in it), dropped afterwards."""
    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with _pg_connect(stores, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{stores.pg_dsn.rpartition('/')[0]}/{name}"
    timescale = False
    with _pg_connect(stores, dsn, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available:
            with contextlib.suppress(psycopg.Error):
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                timescale = True
    try:
        yield dsn, timescale
    finally:
        with _pg_connect(stores, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _minio(stores: Stores) -> Minio:
    secure = stores.s3_endpoint.startswith("https://")
    return Minio(
        stores.s3_endpoint.split("://", 1)[1],
        access_key=stores.s3_access_key,
        secret_key=stores.s3_secret_key,
        secure=secure,
    )


@contextlib.contextmanager
def bucket(stores: Stores, tag: str) -> Iterator[str]:
    """A bucket name the sink creates at start; emptied and removed afterwards."""
    name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        client = _minio(stores)
        with contextlib.suppress(Exception):
            for obj in client.list_objects(name, recursive=True):
                client.remove_object(name, obj.object_name)
            client.remove_bucket(name)


# -- a run: topics, a sink process, its committed offsets --------------------------------------------
@dataclass
class Run:
    settings: Settings
    data_dir: Path
    env: dict[str, str]

    @property
    def prefix(self) -> str:
        return self.settings.kafka.topic_prefix

    @property
    def partitions(self) -> int:
        return self.settings.kafka.partitions

    def topic(self, name: str) -> str:
        return self.prefix + name


_RUN_DIRS: list[Path] = []  # removed when the services stop, whatever happened


def new_run(stores: Stores, tag: str) -> Run:
    settings, data_dir, env = fresh_run(stores.bootstrap, tag)
    _RUN_DIRS.append(data_dir)
    return Run(settings, data_dir, env)


def _remove_run_dirs() -> None:
    while _RUN_DIRS:
        shutil.rmtree(_RUN_DIRS.pop(), ignore_errors=True)


def sink_env(
    run: Run,
    stores: Stores,
    *,
    group: str,
    dsn: str | None = None,
    timescale: bool = False,
    bucket_name: str | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        **run.env,
        "METERSTREAM_METRICS_PORT": "0",
        "METERSTREAM_KAFKA_PARTITIONS": str(run.partitions),
        "METERSTREAM_POSTGRES_DSN": dsn or stores.pg_dsn,
        "METERSTREAM_POSTGRES_PASSWORD": stores.pg_password,
        "METERSTREAM_DB_TIMESCALE": "true" if timescale else "false",
        "METERSTREAM_SCORES_GROUP_ID": group,
        "METERSTREAM_S3_ENDPOINT": stores.s3_endpoint,
        "METERSTREAM_S3_ACCESS_KEY": stores.s3_access_key,
        "METERSTREAM_S3_SECRET_KEY": stores.s3_secret_key,
        "METERSTREAM_LAKE_GROUP_ID": group,
        "METERSTREAM_LAKE_SPOOL_DIR": str(run.data_dir / f"spool-{group}"),
    }
    if bucket_name:
        env["METERSTREAM_LAKE_BUCKET"] = bucket_name
    env.update(extra)
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a local process so far (NaN when it is not local)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


@dataclass
class SinkProcess:
    kind: str
    process: subprocess.Popen[bytes]
    log_path: Path
    peak_rss_mb: float = 0.0

    def sample_rss(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        return self.peak_rss_mb

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads, librdkafka's too)."""
        return cpu_seconds(self.process.pid)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.kind} sink exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> int:
        self.sample_rss()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def start_sink(kind: str, run: Run, env: dict[str, str]) -> SinkProcess:
    log_path = run.data_dir / f"sink-{kind}-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "meterstream.cli", "sink", kind],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return SinkProcess(kind, process, log_path)


class Committed:
    """A consumer group's committed offsets per topic (read without joining the group)."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self._tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    def per_topic(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for tp in self._consumer.committed(self._tps, timeout=10):
            out[tp.topic] = out.get(tp.topic, 0) + max(tp.offset, 0)
        return out

    def total(self) -> int:
        return sum(self.per_topic().values())

    def close(self) -> None:
        self._consumer.close()


# -- publishing ---------------------------------------------------------------------------------------
def score_record(meter: str, window_start_us: int, i: int, model: str = "bench-model") -> dict:
    value = 0.8 + (i * 7919 % 1000) / 400
    features = {name: 100.0 + k * 13.7 + (i * (k + 3) % 97) for k, name in enumerate(FEATURES)}
    return {
        "meter_id": meter,
        "model_id": model,
        "window_start": window_start_us,
        "window_end": window_start_us + 60_000_000,
        "n_readings": 30,
        "features": features,
        "score": value,
        "threshold": 2.6,
        "is_anomaly": value > 2.6,
        "attribution": {name: value * (k + 1) / 36 for k, name in enumerate(FEATURES)},
        "model": {
            "engine": "aws",
            "num_trees": 30,
            "sample_size": 128,
            "shingle_size": 2,
            "feature_names": list(FEATURES),
            "threshold_kind": "adaptive",
        },
        "scored_at": window_start_us + 60_000_000,
    }


def closing_reading(meter: str, ts_us: int) -> dict:
    return {
        "meter_id": meter,
        "source": "simulator",
        "ts": ts_us,
        "ts_offset_minutes": 60,
        "received_at": ts_us,
        "power_w": 100.0,
    }


def publish_backlog(stores: Stores, run: Run, readings: int, meters: int, scores: int) -> None:
    seconds = readings / meters * SIM_INTERVAL_S
    started = time.monotonic()
    publisher = _publish(run.env, meters, seconds / 60, "max")
    _, stderr = publisher.communicate()
    if publisher.returncode != 0:
        raise RuntimeError(f"connector failed: {stderr[-2000:]}")
    reading_codec = AvroCodec.for_schema("Reading")
    score_codec = AvroCodec.for_schema("AnomalyScore")
    producer = Producer(producer_config(run.settings.kafka))
    # One reading per partition an event day after the rest: it closes that partition's last
    # file by the hour rule (and stays in an open file itself).
    for partition in range(run.partitions):
        record = closing_reading(f"bench-closer-{partition}", SIM_START_US + DAY_US)
        producer.produce(
            run.topic(READINGS),
            key=record["meter_id"].encode(),
            value=reading_codec.encode(record),
            partition=partition,
        )
    windows = max(1, scores // meters)
    count = 0
    for w in range(windows):
        for m in range(meters):
            record = score_record(f"sim-{m + 1:04d}", SIM_START_US + w * 60_000_000, count)
            producer.produce(
                run.topic(SCORES), key=record["meter_id"].encode(), value=score_codec.encode(record)
            )
            count += 1
            if count % 10_000 == 0:
                producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("scores were not all delivered")
    print(
        f"  published {record_count(stores.bootstrap, run.topic(READINGS), run.partitions):,} "
        f"readings and {count:,} scores in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


# -- throughput -----------------------------------------------------------------------------------------
@dataclass
class Throughput:
    kind: str
    rows: int
    per_second: float
    cpu_share: float  # the sink's CPU seconds per wall second over the measured span
    backend_cpu_share: float  # the same for its PostgreSQL backend (local server; NaN otherwise)
    seconds_to_done: float  # sink process start to the last commit (start-up included)
    peak_rss_mb: float
    per_topic: dict[str, int] = field(default_factory=dict)
    load: float = 0.0
    spy: str = ""  # py-spy summary over the measured span, when asked for


def _slope(samples: list[tuple[float, int, float]], total: int) -> tuple[float, float]:
    """(rows/s, the sink's CPU seconds per second) between 10 % and 90 % of ``total``."""
    low = next(s for s in samples if s[1] >= total * 0.1)
    high = next((s for s in samples if s[1] >= total * 0.9), samples[-1])
    if high[1] <= low[1]:  # everything committed in one step: fall back to the whole run
        low = samples[0]
    seconds = max(high[0] - low[0], 1e-9)
    return (high[1] - low[1]) / seconds, (high[2] - low[2]) / seconds


def drain(
    label: str,
    committed: Committed,
    target: int,
    *,
    sinks: tuple[SinkProcess, ...] = (),
    timeout_s: float = 1800,
    every: float = 0.1,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[float, int, float]]:
    """Sample committed offsets until ``target`` are committed: (time, committed, sink CPU s)."""
    samples: list[tuple[float, int, float]] = []
    started = time.monotonic()
    last_print = 0.0
    while True:
        now = time.monotonic()
        done = committed.total()
        cpu = float("nan")
        if sinks:
            cpu = 0.0
            for sink in sinks:
                sink.sample_rss()
                cpu += sink.cpu_seconds()
        samples.append((now, done, cpu))
        if on_progress is not None:
            on_progress(done)
        if done >= target:
            break
        for sink in sinks:
            sink.check_alive()
        if now - started > timeout_s:
            raise TimeoutError(f"{label}: {done:,} of {target:,} committed after {timeout_s} s")
        if now - last_print >= 1.0:
            last_print = now
            print(f"  {label}: {done:,}/{target:,} rows committed", end="\r", file=sys.stderr)
        time.sleep(every)
    print(f"  {label}: {target:,}/{target:,} rows committed", file=sys.stderr)
    return samples


def throughput(
    kind: str,
    stores: Stores,
    run: Run,
    *,
    dsn: str | None = None,
    timescale: bool = False,
    py_spy: str | None = None,
    instances: int = 1,
) -> Throughput:
    group = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
    readings_total = record_count(stores.bootstrap, run.topic(READINGS), run.partitions)
    if kind == "lake":
        topics = [run.topic(READINGS)]
        target = readings_total - run.partitions  # the closing readings stay in open files
    else:
        topics = [run.topic(READINGS), run.topic(SCORES)]
        target = readings_total + record_count(stores.bootstrap, topics[1], run.partitions)
    load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        bucket_name = stack.enter_context(bucket(stores, "tp")) if kind == "lake" else None
        env = sink_env(
            run, stores, group=group, dsn=dsn, timescale=timescale, bucket_name=bucket_name
        )
        committed = Committed(stores.bootstrap, group, topics, run.partitions)
        stack.callback(committed.close)
        started = time.monotonic()
        sinks = tuple(start_sink(kind, run, env) for _ in range(instances))
        pid = sinks[0].process.pid
        spy = Spy(py_spy, pid, run.data_dir / f"py-spy-{kind}.txt") if py_spy else None
        spy_hook = spy.window(target) if spy is not None else None
        backend = BackendCpu(stores, dsn, instances) if kind == "scores" and dsn else None

        def on_progress(done: int) -> None:
            if spy_hook is not None:
                spy_hook(done)
            if backend is not None:
                backend(done)

        try:
            samples = drain(kind, committed, target, sinks=sinks, on_progress=on_progress)
            per_topic = committed.per_topic()
        finally:
            if spy is not None:
                spy.stop()
            codes = [sink.stop() for sink in sinks]
        for sink, code in zip(sinks, codes, strict=True):
            if code != 0:
                raise RuntimeError(f"{kind} sink exited with {code}:\n{sink.log_tail()}")
    done_at = next(s[0] for s in samples if s[1] >= target)
    rate, cpu_share = _slope(samples, target)
    backend_share = float("nan")
    if backend is not None and any(s[1] >= target * 0.1 for s in backend.samples):
        backend_share = _slope(backend.samples, target)[1]
    return Throughput(
        kind,
        target,
        rate,
        cpu_share,
        backend_share,
        done_at - started,
        max(sink.peak_rss_mb for sink in sinks),
        {t.removeprefix(run.prefix): n for t, n in per_topic.items()},
        load,
        spy.summary(f"{kind} sink") if spy is not None else "",
    )


class BackendCpu:
    """CPU time of the scores sink's PostgreSQL backend process (local servers: /proc)."""

    def __init__(self, stores: Stores, dsn: str, instances: int = 1) -> None:
        self._stores, self._dsn, self._instances = stores, dsn, instances
        self._pids: list[int] = []
        self.samples: list[tuple[float, int, float]] = []

    def __call__(self, done: int) -> None:
        if len(self._pids) < self._instances and done > 0:
            with (
                contextlib.suppress(psycopg.Error),
                _pg_connect(self._stores, self._dsn, autocommit=True) as conn,
            ):
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'meterstream-sink-scores'"
                ).fetchall()
                self._pids = [int(r[0]) for r in rows]
            self.samples.clear()  # a CPU sum over fewer backends is not comparable
        if len(self._pids) >= self._instances:
            cpu = sum(cpu_seconds(pid) for pid in self._pids)
            self.samples.append((time.monotonic(), done, cpu))


class Spy:
    """py-spy attached to a sink from 10 % to 90 % of its input (wall clock: --idle)."""

    def __init__(self, binary: str, pid: int, out: Path) -> None:
        self._binary, self._pid, self._out = binary, pid, out
        self._process: subprocess.Popen[bytes] | None = None
        self._finished = False

    def window(self, target: int) -> Callable[[int], None]:
        def on_progress(done: int) -> None:
            if self._process is None and done >= target * 0.1:
                self._process = subprocess.Popen(
                    [
                        *(self._binary, "record", "--pid", str(self._pid), "--idle", "--threads"),
                        *(
                            "--nonblocking",
                            "--rate",
                            "100",
                            "--format",
                            "raw",
                            "-o",
                            str(self._out),
                        ),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            elif done >= target * 0.9:
                self.stop()

        return on_progress

    def stop(self) -> None:
        if self._process is not None and not self._finished:
            self._finished = True
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def summary(self, label: str, top: int = 14) -> str:
        """Self and inclusive shares of the busiest thread's samples, by function."""
        if not self._out.exists():
            return f"{label}: no py-spy samples (the measured span was too short?)\n"
        stacks: list[tuple[str, list[str], int]] = []
        per_thread: Counter[str] = Counter()
        for line in self._out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            thread = frames[0].split(":")[0]
            stacks.append((thread, [_frame_name(f) for f in frames[1:]], int(count)))
            per_thread[thread] += int(count)
        main, total = per_thread.most_common(1)[0]
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for thread, frames, count in stacks:
            if thread != main or not frames:
                continue
            own[frames[-1]] += count
            for name in set(frames):
                inclusive[name] += count
        out = io.StringIO()
        out.write(f"{label}, py-spy --idle, 10 % to 90 % of the input: {total:,} samples\n")
        for title, counter in (("self", own), ("inclusive", inclusive)):
            out.write(f"  {title}:\n")
            shown = [(n, c) for n, c in counter.most_common() if c < 0.97 * total]
            for name, count in shown[:top]:  # leaves out the call chain every sample shares
                out.write(f"    {100 * count / total:5.1f} %  {name}\n")
        return out.getvalue()


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """``read_record (/work/main/schemas/decoder.py:203)`` -> ``read_record (schemas/decoder.py)``."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3", str(Path.cwd()) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


# -- profiling (in-process, same backlog, a fresh group and store) -------------------------------------------
def profile(
    kind: str, stores: Stores, run: Run, *, dsn: str | None = None, timescale: bool = False
) -> str:
    from pydantic import SecretStr

    from meterstream.settings import (
        DbSettings,
        LakeSettings,
        PostgresSettings,
        S3Settings,
        ScoresSinkSettings,
        load_settings,
    )

    logging.basicConfig(level=logging.WARNING)
    group = f"bench-prof-{kind}-{uuid.uuid4().hex[:6]}"
    readings_total = record_count(stores.bootstrap, run.topic(READINGS), run.partitions)
    with contextlib.ExitStack() as stack:
        if kind == "lake":
            from sinks.lake.run import build_lake_sink, prepare_bucket
            from sinks.lake.store import LakeStore

            bucket_name = stack.enter_context(bucket(stores, "prof"))
            settings = load_settings(
                env_file_paths=(),
                kafka=run.settings.kafka,
                s3=S3Settings(
                    endpoint=stores.s3_endpoint,
                    access_key=stores.s3_access_key,
                    secret_key=SecretStr(stores.s3_secret_key),
                ),
                lake=LakeSettings(
                    bucket=bucket_name, group_id=group, spool_dir=run.data_dir / f"spool-{group}"
                ),
            )
            settings.lake.spool_dir.mkdir(parents=True, exist_ok=True)
            store = LakeStore(settings.s3, bucket_name)
            prepare_bucket(settings, store)
            loop = build_lake_sink(settings, store)
            topics = [run.topic(READINGS)]
            target = readings_total - run.partitions
        else:
            from sinks.scores.run import build_scores_sink, migrate_when_reachable

            settings = load_settings(
                env_file_paths=(),
                kafka=run.settings.kafka,
                postgres=PostgresSettings(
                    dsn=dsn or stores.pg_dsn, password=SecretStr(stores.pg_password)
                ),
                db=DbSettings(timescale=timescale),
                scores=ScoresSinkSettings(group_id=group),
            )
            migrate_when_reachable(settings)
            loop = build_scores_sink(settings)
            topics = [run.topic(READINGS), run.topic(SCORES)]
            target = readings_total + record_count(stores.bootstrap, topics[1], run.partitions)
        committed = Committed(stores.bootstrap, group, topics, run.partitions)
        stack.callback(committed.close)

        def watch() -> None:
            with contextlib.suppress(Exception):
                drain(f"{kind} (cProfile)", committed, target, timeout_s=1800, every=0.2)
            loop.stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        profiler = cProfile.Profile()
        started = time.monotonic()
        profiler.runcall(loop.run)
        elapsed = time.monotonic() - started
        watcher.join(10)
    out = io.StringIO()
    out.write(
        f"{kind} sink in-process under cProfile: {target:,} rows in {elapsed:.1f} s "
        f"({target / elapsed:,.0f} rows/s with profiler overhead, start-up included)\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(22)
    return out.getvalue()


# -- live visibility ------------------------------------------------------------------------------------------
class LiveReadings:
    """The simulator's readings with event time = wall time: ``rate`` per second."""

    def __init__(self, rate: float) -> None:
        from connector.simulator import HouseholdSimulator

        meters = max(1, round(rate * SIM_INTERVAL_S))
        start = int(time.time() // SIM_INTERVAL_S * SIM_INTERVAL_S * 1_000_000)
        self._batches = HouseholdSimulator(meters, start_us=start, seed=7).batches()
        self._buffer: list[dict] = list(next(self._batches))  # plans the first day: not paced

    def take(self, n: int) -> list[dict]:
        while len(self._buffer) < n:
            self._buffer.extend(next(self._batches))
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        return taken


def publish_live(
    run: Run,
    rate: float,
    seconds: float,
    *,
    scores: bool,
    sample_every: int = 0,
    on_sample: Callable[[str, tuple, Any], None] | None = None,
) -> int:
    """Publish readings (and a score per reading) at ``rate``/s for ``seconds``; returns readings."""
    reading_codec = AvroCodec.for_schema("Reading")
    score_codec = AvroCodec.for_schema("AnomalyScore")
    source = LiveReadings(rate)
    producer = Producer(producer_config(run.settings.kafka))
    readings_topic, scores_topic = run.topic(READINGS), run.topic(SCORES)

    def delivered(table: str, key: tuple, err: Any, msg: Any) -> None:
        if err is None and on_sample is not None:
            on_sample(table, key, msg)

    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - sent
        for record in source.take(due) if due > 0 else ():
            key = record["meter_id"].encode()
            sampled = sample_every and sent % sample_every == 0
            producer.produce(
                readings_topic,
                key=key,
                value=reading_codec.encode(record),
                on_delivery=functools.partial(
                    delivered, "readings", (record["meter_id"], record["ts"])
                )
                if sampled
                else None,
            )
            if scores:
                score = score_record(record["meter_id"], record["ts"], sent)
                producer.produce(
                    scores_topic,
                    key=key,
                    value=score_codec.encode(score),
                    on_delivery=functools.partial(
                        delivered,
                        "anomaly_scores",
                        (score["meter_id"], score["model_id"], score["window_start"]),
                    )
                    if sampled
                    else None,
                )
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(60)
    return sent


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p99": ordered[int(0.99 * (len(ordered) - 1))],
        "max": ordered[-1],
    }


_VISIBLE_SQL = {
    "readings": (
        "SELECT k.i FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS k(m, t, i) "
        "JOIN readings r ON r.meter_id = k.m "
        "AND r.ts = timestamptz 'epoch' + k.t * interval '1 microsecond'"
    ),
    "anomaly_scores": (
        "SELECT k.i FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
        "WITH ORDINALITY AS k(m, mo, t, i) "
        "JOIN anomaly_scores s ON s.meter_id = k.m AND s.model_id = k.mo "
        "AND s.window_start = timestamptz 'epoch' + k.t * interval '1 microsecond'"
    ),
}


class VisibilityPoller(threading.Thread):
    """Looks sampled records up by primary key every ``every`` seconds; latency per record."""

    def __init__(self, stores: Stores, dsn: str, every: float = 0.05) -> None:
        super().__init__(name="visibility", daemon=True)
        self._stores, self._dsn, self._every = stores, dsn, every
        self.samples: queue.Queue[tuple[str, tuple, float]] = queue.Queue()
        self.pending: dict[str, list[tuple[tuple, float]]] = {t: [] for t in _VISIBLE_SQL}
        self.latencies: dict[str, list[float]] = {t: [] for t in _VISIBLE_SQL}
        self.stamp_types: set[int] = set()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def on_sample(self, table: str, key: tuple, msg: Any) -> None:
        stamp_type, stamp_ms = msg.timestamp()
        self.stamp_types.add(stamp_type)
        self.samples.put((table, key, stamp_ms / 1000))

    def outstanding(self) -> int:
        return self.samples.qsize() + sum(len(p) for p in self.pending.values())

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        try:
            with _pg_connect(self._stores, self._dsn, autocommit=True) as conn:
                while not self._halt.wait(self._every):
                    self._poll(conn)
        except BaseException as exc:
            self.error = exc

    def _poll(self, conn: psycopg.Connection) -> None:
        while True:
            try:
                table, key, stamp = self.samples.get_nowait()
            except queue.Empty:
                break
            self.pending[table].append((key, stamp))
        for table, pending in self.pending.items():
            if not pending:
                continue
            columns = [list(c) for c in zip(*(key for key, _ in pending), strict=True)]
            snapshot = time.time()  # the statement's snapshot is taken after this
            try:
                found = {row[0] for row in conn.execute(_VISIBLE_SQL[table], columns).fetchall()}
            except psycopg.errors.UndefinedTable:
                continue  # migrations not applied yet
            kept = []
            for i, (key, stamp) in enumerate(pending, start=1):
                if i in found:
                    self.latencies[table].append(snapshot - stamp)
                else:
                    kept.append((key, stamp))
            self.pending[table] = kept


def _wait(condition: Callable[[], bool], what: str, timeout_s: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _high_watermarks(bootstrap: str, topics: list[str], partitions: int) -> int:
    return sum(record_count(bootstrap, t, partitions) for t in topics)


def live_postgres(stores: Stores, rate: float, seconds: float) -> dict[str, Any]:
    run = new_run(stores, "bsl")
    group = f"bench-live-scores-{uuid.uuid4().hex[:6]}"
    topics = [run.topic(READINGS), run.topic(SCORES)]
    sample_every = max(1, int(rate // 200))
    with database(stores, "live") as (dsn, timescale):
        env = sink_env(run, stores, group=group, dsn=dsn, timescale=timescale)
        committed = Committed(stores.bootstrap, group, topics, run.partitions)
        sink = start_sink("scores", run, env)
        poller = VisibilityPoller(stores, dsn)
        try:
            # Warm-up: the sink has migrated, joined and written once before the clock starts.
            publish_live(run, 50, 1.0, scores=True)
            warm = _high_watermarks(stores.bootstrap, topics, run.partitions)
            _wait(lambda: (sink.check_alive(), committed.total() >= warm)[1], "the warm-up", 120)
            poller.start()
            load = os.getloadavg()[0]
            print(
                f"  postgres live: {rate:,.0f} readings/s + {rate:,.0f} scores/s "
                f"for {seconds:.0f} s ...",
                file=sys.stderr,
            )
            sent = publish_live(
                run,
                rate,
                seconds,
                scores=True,
                sample_every=sample_every,
                on_sample=poller.on_sample,
            )
            with contextlib.suppress(TimeoutError):
                _wait(lambda: poller.outstanding() == 0, "the last samples to show up", 60)
            missing = poller.outstanding()
            sink.sample_rss()
        finally:
            poller.stop()
            code = sink.stop()
            committed.close()
        if poller.error is not None:
            raise poller.error
        if code != 0:
            raise RuntimeError(f"scores sink exited with {code}:\n{sink.log_tail()}")
    shutil.rmtree(run.data_dir, ignore_errors=True)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "sample_every": sample_every,
        "missing": missing,
        "scores": _percentiles(poller.latencies["anomaly_scores"]),
        "readings": _percentiles(poller.latencies["readings"]),
        "peak_rss_mb": sink.peak_rss_mb,
        "timescale": timescale,
        "load": load,
    }


class Ticker(threading.Thread):
    """A tick to every partition of the readings topic every ``every`` seconds, as a worker sends."""

    def __init__(self, run: Run, every: float) -> None:
        super().__init__(name="ticker", daemon=True)
        self._run, self._every = run, every
        self._halt = threading.Event()

    def tick(self, producer: Producer) -> None:
        for partition in range(self._run.partitions):
            producer.produce(
                self._run.topic(READINGS),
                key=b"",
                value=None,
                partition=partition,
                headers=tick_headers(),
            )
        producer.poll(0)

    def run(self) -> None:
        producer = Producer(producer_config(self._run.settings.kafka))
        while not self._halt.wait(self._every):
            self.tick(producer)
        producer.flush(10)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


class Lister(threading.Thread):
    """Lists the lake bucket every ``every`` seconds; the wall time each object was first seen."""

    def __init__(self, client: Minio, bucket_name: str, every: float = 0.2) -> None:
        super().__init__(name="lister", daemon=True)
        self._client, self._bucket, self._every = client, bucket_name, every
        self.seen: dict[str, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self._every):
            listed_at = time.time()  # the listing's snapshot is taken after this
            with contextlib.suppress(Exception):
                for obj in self._client.list_objects(self._bucket, "readings/", recursive=True):
                    self.seen.setdefault(obj.object_name, listed_at)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def live_lake(
    stores: Stores, rate: float, seconds: float, max_age: float, tick_every: float
) -> dict[str, Any]:
    run = new_run(stores, "bll")
    group = f"bench-live-lake-{uuid.uuid4().hex[:6]}"
    topic = run.topic(READINGS)
    client = _minio(stores)
    with bucket(stores, "live") as bucket_name:
        env = sink_env(
            run,
            stores,
            group=group,
            bucket_name=bucket_name,
            METERSTREAM_LAKE_FILE_MAX_AGE=f"{max_age}s",
        )
        committed = Committed(stores.bootstrap, group, [topic], run.partitions)
        sink = start_sink("lake", run, env)
        ticker = Ticker(run, tick_every)
        lister = Lister(client, bucket_name)
        try:
            # Warm-up: ticks only; the sink commits them once it has joined (every 5 s).
            warm_producer = Producer(producer_config(run.settings.kafka))
            ticker.tick(warm_producer)
            warm_producer.flush(10)
            _wait(
                lambda: (sink.check_alive(), committed.total() >= run.partitions)[1],
                "the lake sink to join",
                120,
            )
            lister.start()
            ticker.start()
            load = os.getloadavg()[0]
            print(
                f"  lake live: {rate:,.0f} readings/s for {seconds:.0f} s, file max age "
                f"{max_age:g} s, ticks every {tick_every:g} s ...",
                file=sys.stderr,
            )
            sent = publish_live(run, rate, seconds, scores=False)
            end = record_count(stores.bootstrap, topic, run.partitions)
            drain(
                "lake live",
                committed,
                end,
                sinks=(sink,),
                timeout_s=max_age + 4 * tick_every + 120,
                every=0.5,
            )
            time.sleep(1.0)  # two more listings
        finally:
            ticker.stop()
            lister.stop()
            code = sink.stop()
            committed.close()
        if code != 0:
            raise RuntimeError(f"lake sink exited with {code}:\n{sink.log_tail()}")
        latencies: list[float] = []
        rows = 0
        scratch = run.data_dir / "downloads"
        scratch.mkdir(exist_ok=True)
        for key, seen_at in sorted(lister.seen.items()):
            local = scratch / "object.parquet"
            client.fget_object(bucket_name, key, str(local))
            stamps = pq.read_table(local, columns=["kafka_timestamp"]).column("kafka_timestamp")
            micros = stamps.cast(pa.int64()).to_numpy()
            latencies.extend((seen_at - micros / 1e6).tolist())
            rows += len(micros)
    shutil.rmtree(run.data_dir, ignore_errors=True)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "rows": rows,
        "objects": len(lister.seen),
        "max_age": max_age,
        "tick_every": tick_every,
        "latency": _percentiles(latencies),
        "peak_rss_mb": sink.peak_rss_mb,
        "load": load,
    }


# -- main ------------------------------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "meets" if ok else "BELOW"


@dataclass
class Row:
    what: str
    result: str
    extra: str  # CPU share, peak RSS, load average at the start
    target: str
    verdict: str


def _print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    head = Row("measurement", "result", "sink process", "target", "")
    widths = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("what", "result", "extra")]
    for r in [head, *rows]:
        print(
            f"  {r.what:<{widths[0]}} | {r.result:<{widths[1]}} | {r.extra:<{widths[2]}} | "
            f"{r.target} {r.verdict}".rstrip()
        )


def _throughput_rows(services: Stores, run: Run, kinds: list[str], args: Any) -> list[Row]:
    rows: list[Row] = []
    with database(services, "tp") as (dsn, timescale):
        for kind in kinds:
            sink_kind = "lake" if kind == "lake" else "scores"
            result = throughput(
                sink_kind,
                services,
                run,
                dsn=dsn,
                timescale=timescale,
                py_spy=args.py_spy,
                instances=args.instances,
            )
            target = LAKE_TARGET if kind == "lake" else POSTGRES_TARGET
            what = "readings" if kind == "lake" else "readings + scores"
            if args.instances > 1:
                what += f", {args.instances} sink processes"
            store = "" if kind == "lake" else (", TimescaleDB" if timescale else ", plain PG")
            rows.append(
                Row(
                    f"{kind} throughput ({result.rows:,} {what}{store})",
                    f"{result.per_second:,.0f} rows/s (all done {result.seconds_to_done:.1f} s "
                    "after process start)",
                    f"CPU {result.cpu_share:.2f} cores"
                    + (
                        f" (+ PG backend {result.backend_cpu_share:.2f})"
                        if result.backend_cpu_share == result.backend_cpu_share
                        else ""
                    )
                    + f", peak RSS {result.peak_rss_mb:,.0f} MB, load {result.load:.1f}"
                    + (", py-spy attached" if args.py_spy else ""),
                    f">= {target:,} rows/s",
                    _verdict(result.per_second >= target),
                )
            )
            if result.spy:
                print(result.spy)
            if args.profile:
                with database(services, "prof") as (pdsn, ptimescale):
                    print(profile(sink_kind, services, run, dsn=pdsn, timescale=ptimescale))
    return rows


def _postgres_live_rows(services: Stores, args: Any) -> list[Row]:
    live = live_postgres(services, args.live_rate, args.live_seconds)
    rows = []
    for table, key in (("anomaly_scores", "scores"), ("readings", "readings")):
        p = live[key]
        scores = table == "anomaly_scores"
        rows.append(
            Row(
                f"postgres visibility, {table} ({live['rate']:,.0f}/s on each topic)",
                f"p50 {p['p50'] * 1000:,.0f} ms, p99 {p['p99'] * 1000:,.0f} ms, max "
                f"{p['max'] * 1000:,.0f} ms ({p['n']:,} samples, {live['missing']} not seen)",
                f"peak RSS {live['peak_rss_mb']:,.0f} MB, load {live['load']:.1f}",
                f"p99 <= {SCORES_P99_TARGET_S:g} s" if scores else "",
                _verdict(p["p99"] <= SCORES_P99_TARGET_S) if scores else "",
            )
        )
    return rows


def _lake_live_rows(services: Stores, args: Any) -> list[Row]:
    live = live_lake(
        services, args.live_rate, args.lake_live_seconds, args.lake_max_age, args.tick_every
    )
    p = live["latency"]
    bound = live["max_age"] + live["tick_every"]
    return [
        Row(
            f"lake visibility ({live['rate']:,.0f} readings/s, FILE_MAX_AGE {live['max_age']:g} s,"
            f" ticks every {live['tick_every']:g} s)",
            f"p50 {p['p50']:.1f} s, p99 {p['p99']:.1f} s, max {p['max']:.1f} s "
            f"({live['rows']:,} of {live['sent']:,} rows, {live['objects']} objects)",
            f"peak RSS {live['peak_rss_mb']:,.0f} MB, load {live['load']:.1f}",
            f"bound {bound:g} s + upload",
            _verdict(p["max"] <= bound + 2 and live["rows"] == live["sent"]),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=500_000, help="backlog readings")
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--scores", type=int, default=100_000, help="backlog scores")
    parser.add_argument("--only", choices=["lake", "postgres"])
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-live", action="store_true")
    parser.add_argument("--live-rate", type=float, default=2000, help="records/s in live runs")
    parser.add_argument("--live-seconds", type=float, default=60, help="postgres live run")
    parser.add_argument("--lake-live-seconds", type=float, default=180)
    parser.add_argument("--lake-max-age", type=float, default=60, help="FILE_MAX_AGE, seconds")
    parser.add_argument("--tick-every", type=float, default=5)
    parser.add_argument(
        "--profile", action="store_true", help="also drain the backlog in-process under cProfile"
    )
    parser.add_argument(
        "--py-spy",
        metavar="BINARY",
        help="attach this py-spy to each throughput sink between 10 %% and 90 %% of its input",
    )
    parser.add_argument(
        "--instances", type=int, default=1, help="sink processes in one group (throughput)"
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.readings, args.meters, args.scores = 20_000, 10, 5_000
        args.live_rate, args.live_seconds, args.lake_live_seconds = 500, 6, 8
        args.lake_max_age, args.tick_every = 3, 1
    kinds = [args.only] if args.only else ["lake", "postgres"]
    started = time.monotonic()
    rows: list[Row] = []
    with stores() as services:
        print(
            f"services: started here: {', '.join(services.started) or 'none'} (others from env); "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
        )
        if not args.no_throughput:
            run = new_run(services, "bst")
            publish_backlog(services, run, args.readings, args.meters, args.scores)
            rows += _throughput_rows(services, run, kinds, args)
            shutil.rmtree(run.data_dir, ignore_errors=True)
        if not args.no_live and "postgres" in kinds:
            rows += _postgres_live_rows(services, args)
        if not args.no_live and "lake" in kinds:
            rows += _lake_live_rows(services, args)
    _print_table(
        f"sinks{' (smoke)' if args.smoke else ''}: {time.monotonic() - started:.0f} s on "
        f"{os.cpu_count()} cores shared with the services (and whatever else runs)",
        rows,
    )


if __name__ == "__main__":
    main()
