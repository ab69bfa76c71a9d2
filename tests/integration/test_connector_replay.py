"""`meterstream connector --source replay` end to end: files in, Avro readings in Kafka out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meterstream.kafka.partitioner import partition_for_meter
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings
from schemas.timestamps import datetime_to_micros
from schemas.topics import READINGS
from tests.integration.kafka_helpers import read_all


def _env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp_path / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
        **extra,
    }


def _connector(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterstream.cli", "connector", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_replay_of_a_csv_file(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    csv_file = tmp_path / "readings.csv"
    lines = ["meter_id,ts,power_w,voltage_l1_v"]
    for i in range(200):
        lines.append(f"house-{i % 4},2026-03-29T01:{i // 60:02d}:{i % 60:02d}.5+01:00,{100 + i},")
    lines.append("house-0,2026-03-29T01:00:00.5+01:00,100,")  # a duplicate of the first row
    lines.append("house-1,2099-01-01T00:00:00+00:00,5,")  # far in the future: not published
    csv_file.write_text("\n".join(lines) + "\n")

    result = _connector(
        _env(settings, tmp_path), "--source", "replay", "--replay-path", str(csv_file)
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 202 readings from 1 file(s)" in result.stderr
    assert "published 200 readings" in result.stderr
    assert "dropped 2" in result.stderr

    records = read_all(
        settings.kafka.bootstrap_servers, settings.kafka.topic_prefix + READINGS, expect=200
    )
    assert len(records) == 200
    keys = {(r.value["meter_id"], r.value["ts"]) for r in records}
    assert len(keys) == 200  # each reading exactly once
    for record in records:
        assert record.key == record.value["meter_id"].encode()
        assert record.partition == partition_for_meter(
            record.value["meter_id"], settings.kafka.partitions
        )
        assert record.value["source"] == "replay"
        assert record.value["voltage_l1_v"] is None
    first = min(records, key=lambda r: r.value["ts"]).value
    assert first["ts"] == datetime_to_micros(datetime(2026, 3, 29, 0, 0, 0, 500_000, tzinfo=UTC))
    assert first["ts_offset_minutes"] == 60


def test_replay_of_json_lines_and_parquet(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    folder = tmp_path / "lake" / "date=2026-01-05" / "hour=07"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "meter_id": ["a", "b", "a"],
            "ts": pa.array(
                [1_767_596_400_000_000, 1_767_596_401_000_000, 1_767_596_402_000_000], pa.int64()
            ).cast(pa.timestamp("us", "UTC")),
            "power_w": [1.0, 2.0, 3.0],
            "source": ["tibber", "tibber", "tibber"],
        }
    )
    pq.write_table(table, folder / "part-0.parquet")
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"ts": 1_767_596_500_000_000 + i, "power_w": 7.5}) for i in range(5))
        + "\n"
    )

    env = _env(settings, tmp_path)
    parquet_run = _connector(env, "--source", "replay", "--replay-path", str(tmp_path / "lake"))
    assert parquet_run.returncode == 0, parquet_run.stderr
    json_run = _connector(
        env, "--source", "replay", "--replay-path", str(jsonl), "--replay-meter-id", "single-house"
    )
    assert json_run.returncode == 0, json_run.stderr

    records = read_all(
        settings.kafka.bootstrap_servers, settings.kafka.topic_prefix + READINGS, expect=8
    )
    by_meter: dict[str, int] = {}
    for record in records:
        by_meter[record.value["meter_id"]] = by_meter.get(record.value["meter_id"], 0) + 1
    assert by_meter == {"a": 2, "b": 1, "single-house": 5}
    assert {r.value["source"] for r in records if r.value["meter_id"] != "single-house"} == {
        "tibber"
    }


def test_a_replay_file_without_meter_ids_needs_one(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    csv_file = tmp_path / "house.csv"
    csv_file.write_text("ts,power_w\n2026-01-05T07:00:00+01:00,5\n")
    result = _connector(
        _env(settings, tmp_path), "--source", "replay", "--replay-path", str(csv_file)
    )
    assert result.returncode != 0
    assert "METERSTREAM_REPLAY_METER_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_from_the_lake_on_s3(
    settings_factory: Callable[..., Settings], tmp_path: Path, bucket_factory, minio_client
) -> None:
    settings = settings_factory(s3=True)
    ensure_topics(settings)
    bucket = bucket_factory()
    table = pa.table(
        {
            "meter_id": ["lake-1"] * 4,
            "ts": pa.array(
                [1_767_596_400_000_000 + i * 2_000_000 for i in range(4)], pa.int64()
            ).cast(pa.timestamp("us", "UTC")),
            "power_w": [10.0, 11.0, 12.0, 13.0],
        }
    )
    local = tmp_path / "part.parquet"
    pq.write_table(table, local)
    minio_client.fput_object(bucket, "readings/date=2026-01-05/hour=07/part-0.parquet", str(local))
    env = _env(
        settings,
        tmp_path,
        METERSTREAM_S3_ENDPOINT=settings.s3.endpoint,
        METERSTREAM_S3_ACCESS_KEY=settings.s3.access_key,
        METERSTREAM_S3_SECRET_KEY=settings.s3.resolved_secret_key().get_secret_value(),
    )
    result = _connector(env, "--source", "replay", "--replay-path", f"s3://{bucket}/readings/")
    assert result.returncode == 0, result.stderr
    records = read_all(
        settings.kafka.bootstrap_servers, settings.kafka.topic_prefix + READINGS, expect=4
    )
    assert sorted(r.value["power_w"] for r in records) == [10.0, 11.0, 12.0, 13.0]
