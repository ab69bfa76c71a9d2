"""Run `meterstream sink scores|lake` processes in tests, feed them records, read the stores."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Producer
from minio import Minio

from meterstream.kafka.clients import producer_config
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import READINGS, SCORES, tick_headers
from sinks.lake.schema import reading_field_names
from tests.integration.worker_helpers import WorkerProcess, spawn_cli

HOUR_US = 3_600_000_000
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def reading(meter: str, ts_us: int, power: float, **extra: Any) -> dict[str, Any]:
    """A Reading as the codec decodes it: every field present, absent optional ones None."""
    return {
        **dict.fromkeys(reading_field_names()),
        "meter_id": meter,
        "source": "simulator",
        "ts": ts_us,
        "ts_offset_minutes": 60,
        "received_at": ts_us + 150_000,
        "power_w": power,
        "voltage_l1_v": 231.5,
        "current_l1_a": power / 230.0,
        "currency": "NOK",
        **extra,
    }


def readings_series(
    meters: int, count: int, *, start_us: int = T0_US, interval_s: float = 10.0
) -> list[dict[str, Any]]:
    """``count`` readings per meter, interleaved in time order, crossing hours when long enough."""
    step = int(interval_s * 1_000_000)
    return [
        reading(f"m{m}", start_us + i * step, 200.0 + 37.0 * m + (i * 7919 % 500))
        for i in range(count)
        for m in range(meters)
    ]


def score(meter: str, window_start_us: int, value: float, model: str = "app-abc") -> dict[str, Any]:
    return {
        "meter_id": meter,
        "model_id": model,
        "window_start": window_start_us,
        "window_end": window_start_us + 60_000_000,
        "n_readings": 6,
        "features": {"power_mean_w": 400.0 + value, "energy_wh": 6.5},
        "score": value,
        "threshold": 2.5 if value > 0 else None,
        "is_anomaly": value > 2.5,
        "attribution": {"power_mean_w": value * 0.7, "energy_wh": value * 0.3},
        "model": {
            "engine": "aws",
            "num_trees": 30,
            "sample_size": 128,
            "shingle_size": 2,
            "feature_names": ["power_mean_w", "energy_wh"],
            "threshold_kind": "adaptive",
        },
        "scored_at": window_start_us + 70_000_000,
    }


def scores_series(meters: int, windows: int) -> list[dict[str, Any]]:
    return [
        score(f"m{m}", T0_US + w * 60_000_000, round(1.0 + ((w * 31 + m) % 17) / 5, 3))
        for w in range(windows)
        for m in range(meters)
    ]


def produce(
    settings: Settings,
    topic: str,
    record_name: str,
    records: Iterable[Mapping[str, Any]],
    *,
    ticks_every: int = 0,
    raw: Iterable[bytes] = (),
) -> int:
    """Publish records keyed by meter (murmur2), optionally a tick to every partition now and then."""
    codec = AvroCodec.for_schema(record_name)
    producer = Producer(producer_config(settings.kafka))
    full = settings.kafka.topic_prefix + topic
    count = 0
    for record in records:
        producer.produce(full, key=record["meter_id"].encode(), value=codec.encode(record))
        count += 1
        if ticks_every and count % ticks_every == 0:
            for partition in range(settings.kafka.partitions):
                producer.produce(
                    full, key=b"", value=None, partition=partition, headers=tick_headers()
                )
        if count % 10_000 == 0:
            producer.poll(0)
    for value in raw:
        producer.produce(full, key=b"m0", value=value)
    assert producer.flush(60) == 0
    return count


def produce_readings(settings: Settings, records: Iterable[Mapping[str, Any]], **kw: Any) -> int:
    return produce(settings, READINGS, "Reading", records, **kw)


def produce_scores(settings: Settings, records: Iterable[Mapping[str, Any]], **kw: Any) -> int:
    return produce(settings, SCORES, "AnomalyScore", records, **kw)


def sink_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "METERSTREAM_POSTGRES_DSN": settings.postgres.dsn,
        "METERSTREAM_S3_ENDPOINT": settings.s3.endpoint,
        "METERSTREAM_S3_ACCESS_KEY": settings.s3.access_key,
        "METERSTREAM_METRICS_PORT": "0",
        "METERSTREAM_SCORES_BATCH_ROWS": "500",
        "METERSTREAM_SCORES_RETRY_MAX": "2s",
        "METERSTREAM_SCORES_SESSION_TIMEOUT": "6s",
        "METERSTREAM_LAKE_SESSION_TIMEOUT": "6s",
        "METERSTREAM_LAKE_RETRY_MAX": "2s",
        "METERSTREAM_LAKE_FILE_MAX_ROWS": "700",
        "METERSTREAM_LAKE_ROW_GROUP_ROWS": "1000",
    }
    password = settings.postgres.resolved_password()
    if password is not None:
        env["METERSTREAM_POSTGRES_PASSWORD"] = password.get_secret_value()
    env["METERSTREAM_S3_SECRET_KEY"] = settings.s3.resolved_secret_key().get_secret_value()
    env.update(extra)
    return env


def start_sink(kind: str, settings: Settings, log_path: Path, **extra: str) -> WorkerProcess:
    return spawn_cli(["sink", kind], sink_env(settings, **extra), log_path)


def crash_at_fault_point(
    kind: str, settings: Settings, log_path: Path, fault: str, **extra: str
) -> None:
    """Run a sink with ``METERSTREAM_FAULT=fault`` and check that it killed itself there."""
    crashing = start_sink(kind, settings, log_path, METERSTREAM_FAULT=fault, **extra)
    try:
        code = crashing.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        crashing.kill()  # never leave a sink behind, whatever the test's outcome
        code = None
    assert code == -9, f"fault {fault} not reached (exit {code}):\n{crashing.output()[-3000:]}"


def wait_for(
    condition: Callable[[], bool], what: str, *, timeout_s: float = 90.0, every: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def pg_rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(**settings.postgres.connect_kwargs()) as conn:
        return conn.execute(query).fetchall()


def pg_count(settings: Settings, table: str) -> int:
    try:
        return int(pg_rows(settings, f"SELECT count(*) FROM {table}")[0][0])
    except psycopg.errors.UndefinedTable:
        return 0


def lake_table(client: Minio, bucket: str) -> tuple[pa.Table, list[str]]:
    """Every row of every Parquet object in the bucket's readings/, and the object names."""
    tables = []
    names = []
    for obj in client.list_objects(bucket, prefix="readings/", recursive=True):
        name = obj.object_name
        assert name is not None
        names.append(name)
        response = client.get_object(bucket, name)
        try:
            tables.append(pq.read_table(io.BytesIO(response.read())))
        finally:
            response.close()
            response.release_conn()
    if not tables:
        return pa.table({}), names
    return pa.concat_tables(tables, promote_options="default"), names


class Ticker:
    """Sends a tick to every partition of the readings topic twice a second, as a worker would.

    Ticks carry the broker's time, so with a short METERSTREAM_LAKE_FILE_MAX_AGE they close every
    open lake file within seconds and the lake catches up with the topic while the sink runs.
    """

    def __init__(self, settings: Settings, every_s: float = 0.5) -> None:
        import threading

        self._settings = settings
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)

    def _run(self) -> None:
        producer = Producer(producer_config(self._settings.kafka))
        topic = self._settings.kafka.topic_prefix + READINGS
        while not self._stop.wait(self._every):
            for partition in range(self._settings.kafka.partitions):
                producer.produce(
                    topic, key=b"", value=None, partition=partition, headers=tick_headers()
                )
            producer.poll(0)
        producer.flush(10)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def committed_behind(settings: Settings, group: str, topics: Iterable[str]) -> int:
    """How many records of ``topics`` the consumer ``group`` has not committed yet."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    try:
        partitions = [
            TopicPartition(settings.kafka.topic_prefix + topic, p)
            for topic in topics
            for p in range(settings.kafka.partitions)
        ]
        behind = 0
        for tp in consumer.committed(partitions, timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            behind += high - max(tp.offset, 0)
        return behind
    finally:
        consumer.close()


def wait_until_caught_up(
    settings: Settings, group: str, topics: Iterable[str], timeout_s: float = 90.0
) -> None:
    """Wait until ``group`` has committed everything on ``topics`` (so it has written it all)."""
    names = list(topics)
    wait_for(
        lambda: committed_behind(settings, group, names) == 0,
        f"group {group} to commit the end of {', '.join(names)}",
        timeout_s=timeout_s,
    )
