"""Lake files for tests: rows with Kafka columns, written as Parquet in the lake's layout.

``s3://<bucket>/readings/date=YYYY-MM-DD/hour=HH/<topic>+<partition:04d>+<first_offset:020d>.parquet``
with the columns of :func:`sinks.lake.schema.readings_schema` (docs/sinks.md). Tests that need
an older file (written before an optional column existed) pass ``drop=("signal_strength",)``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio
from pydantic import SecretStr

from meterstream.settings import LakeSettings, S3Settings, Settings, WorkerSettings, load_settings
from sinks.lake.schema import readings_schema

TOPIC = "meter.readings.v1"
ARRIVAL_DELAY = timedelta(seconds=1)

Row = dict[str, Any]


def reading_row(
    meter_id: str,
    ts: datetime,
    power_w: float,
    *,
    partition: int,
    offset: int,
    source: str = "simulator",
    **fields: Any,
) -> Row:
    """One lake row: every schema column (NULL unless given), Kafka columns included."""
    if ts.tzinfo is None:
        raise ValueError("ts must be timezone-aware")
    row: Row = dict.fromkeys(readings_schema().names)
    row.update(
        meter_id=meter_id,
        source=source,
        ts=ts,
        received_at=ts + ARRIVAL_DELAY,
        power_w=power_w,
        kafka_partition=partition,
        kafka_offset=offset,
        kafka_timestamp=ts + ARRIVAL_DELAY,
    )
    unknown = set(fields) - set(row)
    if unknown:
        raise KeyError(f"not lake columns: {sorted(unknown)}")
    row.update(fields)
    return row


def file_slot(row: Row) -> tuple[str, int, int]:
    """(date, hour, partition): rows sharing it may share a file."""
    ts = row["ts"].astimezone(UTC)
    return ts.strftime("%Y-%m-%d"), ts.hour, int(row["kafka_partition"])


def object_key(rows: Sequence[Row], topic: str = TOPIC) -> str:
    """The lake key of a file holding ``rows`` (one hour of one partition)."""
    slots = {file_slot(r) for r in rows}
    if len(slots) != 1:
        raise ValueError(f"a lake file holds one hour of one partition, not {sorted(slots)}")
    (date, hour, partition) = slots.pop()
    first = min(int(r["kafka_offset"]) for r in rows)
    return f"readings/date={date}/hour={hour:02d}/{topic}+{partition:04d}+{first:020d}.parquet"


def parquet_bytes(rows: Sequence[Row], drop: Iterable[str] = ()) -> bytes:
    """The rows as a lake Parquet file, minus the ``drop`` columns (an older writer's file)."""
    schema = readings_schema()
    for name in drop:
        schema = schema.remove(schema.get_field_index(name))
    table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def put_file(
    client: Minio, bucket: str, rows: Sequence[Row], *, drop: Iterable[str] = (), key: str = ""
) -> str:
    """Upload one file (rows of one hour and partition); returns its key."""
    data = parquet_bytes(rows, drop)
    key = key or object_key(rows)
    client.put_object(bucket, key, io.BytesIO(data), len(data))
    return key


def put_lake(
    client: Minio, bucket: str, rows: Iterable[Row], *, drop: Iterable[str] = ()
) -> list[str]:
    """Upload rows as the lake sink would: one file per (date, hour, partition)."""
    ordered = sorted(rows, key=lambda r: (file_slot(r), r["kafka_offset"]))
    return [put_file(client, bucket, list(g), drop=drop) for _, g in groupby(ordered, file_slot)]


def lake_settings(
    endpoint: str,
    access_key: str,
    secret_key: str,
    bucket: str,
    *,
    window_s: float = 60.0,
    max_gap_s: float = 30.0,
) -> Settings:
    """Settings for reading a test bucket as the lake (the energy views' window and gap too)."""
    return load_settings(
        env_file_paths=(),
        s3=S3Settings(endpoint=endpoint, access_key=access_key, secret_key=SecretStr(secret_key)),
        lake=LakeSettings(bucket=bucket),
        worker=WorkerSettings(window=window_s, energy_max_gap=max_gap_s),
    )
