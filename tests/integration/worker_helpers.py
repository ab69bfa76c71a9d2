"""Run `meterstream worker` processes in tests and read what they published."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import SCORES

# Small and fast for tests: 1 s ticks, 2 s idle timeout, short sessions and commits, small
# batches (so a run has many batches to crash between), frequent snapshots.
FAST_WORKER_ENV = {
    "METERSTREAM_WORKER_TICK_INTERVAL": "1s",
    "METERSTREAM_WORKER_IDLE_TIMEOUT": "2s",
    "METERSTREAM_WORKER_SESSION_TIMEOUT": "6s",
    "METERSTREAM_WORKER_COMMIT_INTERVAL": "0.5s",
    "METERSTREAM_WORKER_BATCH_SIZE": "300",
    "METERSTREAM_WORKER_FLUSH_INTERVAL": "0",
    "METERSTREAM_WORKER_SNAPSHOT_EVERY": "12",
    "METERSTREAM_WORKER_WARMUP": "16",
    "METERSTREAM_WORKER_THRESHOLD_WARMUP": "8",
    "METERSTREAM_WORKER_TREES": "20",
    "METERSTREAM_WORKER_SAMPLE_SIZE": "64",
    "METERSTREAM_WORKER_WEB_PORT": "0",
}


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    log_path: Path

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log_path.read_text()


def start_worker(
    settings: Settings,
    *,
    app_id: str,
    data_dir: Path,
    log_path: Path,
    instance: str = "w1",
    **extra: str,
) -> WorkerProcess:
    env = {
        **os.environ,
        **FAST_WORKER_ENV,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "METERSTREAM_WORKER_APP_ID": app_id,
        "METERSTREAM_WORKER_DATA_DIR": str(data_dir),
        "METERSTREAM_WORKER_INSTANCE_ID": f"{app_id}-{instance}",
        **extra,
    }
    return spawn_cli(["worker"], env, log_path)


_SPAWNED: list[subprocess.Popen[str]] = []


def _kill_leftovers() -> None:
    for process in _SPAWNED:
        if process.poll() is None:
            process.kill()


atexit.register(_kill_leftovers)  # a failed or interrupted test must not leave processes behind


def spawn_cli(args: list[str], env: dict[str, str], log_path: Path) -> WorkerProcess:
    """Run ``meterstream <args>`` in the background, its output appended to ``log_path``."""
    with log_path.open("a") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "meterstream.cli", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    _SPAWNED.append(process)
    return WorkerProcess(process, log_path)


def read_scores(
    settings: Settings,
    model_prefix: str,
    *,
    timeout_s: float = 5.0,
    since: dict[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Every AnomalyScore on the scores topic whose model_id starts with ``model_prefix``.

    ``since``: per partition, the offset to start from (see :func:`score_ends`); default 0.
    """
    topic = settings.kafka.topic_prefix + SCORES
    codec = AvroCodec.for_schema("AnomalyScore")
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "score-reader"}
    )
    try:
        start = since or {}
        ends = {}
        for partition in range(settings.kafka.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > max(low, start.get(partition, 0)):
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in ends])
        found = []
        deadline = time.monotonic() + timeout_s + 30
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    continue
                record = codec.decode(message.value())
                if record["model_id"].startswith(model_prefix):
                    found.append(record)
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
        return found
    finally:
        consumer.close()


def score_ends(settings: Settings) -> dict[int, int]:
    """The scores topic's end offset per partition: what was published so far."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "score-reader"}
    )
    try:
        topic = settings.kafka.topic_prefix + SCORES
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(settings.kafka.partitions)
        }
    finally:
        consumer.close()


def wait_for_windows(
    settings: Settings,
    model_prefix: str,
    expected: int,
    *,
    timeout_s: float = 120.0,
    since: dict[int, int] | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    """Wait until ``expected`` distinct (meter, window) scores exist; return them (last wins)."""
    deadline = time.monotonic() + timeout_s
    by_window: dict[tuple[str, int], dict[str, Any]] = {}
    while time.monotonic() < deadline:
        by_window = {}
        for record in read_scores(settings, model_prefix, since=since):
            key = (record["meter_id"], record["window_start"])
            previous = by_window.get(key)
            if previous is not None and comparable(previous) != comparable(record):
                raise AssertionError(f"window {key} was scored twice with different values")
            by_window[key] = record
        if len(by_window) >= expected:
            return by_window
        time.sleep(1.0)
    raise AssertionError(
        f"only {len(by_window)} of {expected} windows scored within {timeout_s:.0f} s"
    )


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A score without what differs by design between two app ids (the model id)."""
    return {k: v for k, v in record.items() if k != "model_id"}


def wait_until_stable(
    settings: Settings,
    model_prefix: str,
    *,
    minimum: int,
    quiet_s: float = 25.0,
    timeout_s: float = 240.0,
) -> dict[tuple[str, int], dict[str, Any]]:
    """Wait until at least ``minimum`` windows are scored and no new one came for ``quiet_s``.

    ``quiet_s`` must outlast the idle close of a stream's last windows: lateness plus the idle
    timeout plus a tick interval after the last reading (15 s and more with the test settings).
    """
    deadline = time.monotonic() + timeout_s
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        scores = wait_for_windows(
            settings, model_prefix, minimum, timeout_s=max(1.0, deadline - time.monotonic())
        )
        if len(scores) != last_count:
            last_count, last_change = len(scores), time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            return scores
        time.sleep(1.0)
    raise AssertionError(f"scores of {model_prefix} still changing after {timeout_s:.0f} s")
