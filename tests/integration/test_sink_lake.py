"""The lake sink against real Kafka and MinIO: exactly once in the lake, through crashes and outages."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from minio import Minio

from meterstream.kafka.topics import ensure_topics
from meterstream.settings import LakeSettings, S3Settings, Settings
from sinks.lake.naming import parse_key
from sinks.lake.schema import readings_schema
from tests.integration.sink_helpers import (
    HOUR_US,
    T0_US,
    Ticker,
    crash_at_fault_point,
    lake_table,
    produce_readings,
    readings_series,
    start_sink,
    wait_for,
)
from tests.support.tcp_proxy import TcpProxy

METERS = 4
PER_METER = 600  # 10 s apart: 100 minutes, so files roll on two hour changes


@pytest.fixture
def lake_settings(
    settings_factory: Callable[..., Settings], bucket_factory: Callable[[], str], tmp_path: Path
) -> Settings:
    settings = settings_factory(s3=True)
    bucket = bucket_factory()
    settings = settings.model_copy(
        update={"lake": LakeSettings(bucket=bucket, spool_dir=tmp_path / "spool")}
    )
    ensure_topics(settings)
    return settings


def _lake_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "METERSTREAM_LAKE_BUCKET": settings.lake.bucket,
        "METERSTREAM_LAKE_SPOOL_DIR": str(settings.lake.spool_dir),
        "METERSTREAM_LAKE_GROUP_ID": f"lake-{settings.kafka.topic_prefix}",
        **extra,
    }


def _lake_offsets(client: Minio, bucket: str) -> Counter[tuple[int, int]]:
    table, _ = lake_table(client, bucket)
    if table.num_rows == 0:
        return Counter()
    pairs = zip(
        table.column("kafka_partition").to_pylist(),
        table.column("kafka_offset").to_pylist(),
        strict=True,
    )
    return Counter(pairs)


def _assert_exactly_once(client: Minio, bucket: str, expected: int) -> None:
    offsets = _lake_offsets(client, bucket)
    duplicated = [pair for pair, n in offsets.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} readings twice in the lake, e.g. {duplicated[:3]}"
    assert len(offsets) == expected, f"{len(offsets)} of {expected} readings in the lake"


def test_every_reading_lands_once_with_hive_layout_and_sigterm_flushes(
    lake_settings: Settings, minio_client: Minio, tmp_path: Path
) -> None:
    records = readings_series(METERS, PER_METER)
    produce_readings(lake_settings, records, ticks_every=97)
    sink = start_sink("lake", lake_settings, tmp_path / "lake.log", **_lake_env(lake_settings))
    try:
        # File cap 700 rows: most rows are uploaded while running; SIGTERM uploads the rest.
        wait_for(
            lambda: sum(_lake_offsets(minio_client, lake_settings.lake.bucket).values()) >= 1400,
            "the first files",
        )
        time.sleep(3)  # the rest of the backlog is read in milliseconds: it sits in open files
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
    _assert_exactly_once(minio_client, lake_settings.lake.bucket, len(records))

    table, names = lake_table(minio_client, lake_settings.lake.bucket)
    assert table.schema.remove_metadata() == readings_schema()
    hours = set()
    for name in names:
        parsed = parse_key(name)
        assert parsed is not None, name
        hours.add((parsed.hour.date, parsed.hour.hour))
        # Event-time partitions: every row of a file lies in its date=/hour= directory.
        local = _download(minio_client, lake_settings.lake.bucket, name, tmp_path)
        stamps = pq.read_table(local, columns=["ts"]).column("ts").to_pylist()
        assert {(t.strftime("%Y-%m-%d"), t.hour) for t in stamps} == {
            (parsed.hour.date, parsed.hour.hour)
        }
    assert hours == {("2026-01-01", 0), ("2026-01-01", 1)}
    sent = {(r["meter_id"], r["ts"]): r["power_w"] for r in records}
    got = {
        (m, int(ts.timestamp() * 1_000_000)): p
        for m, ts, p in zip(
            table.column("meter_id").to_pylist(),
            table.column("ts").to_pylist(),
            table.column("power_w").to_pylist(),
            strict=True,
        )
    }
    assert got == sent
    local = _download(minio_client, lake_settings.lake.bucket, names[0], tmp_path)
    meta = pq.ParquetFile(local).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def _download(client: Minio, bucket: str, name: str, tmp_path: Path) -> str:
    target = tmp_path / "one.parquet"
    client.fget_object(bucket, name, str(target))
    return str(target)


@pytest.mark.parametrize(
    "fault",
    [
        "after_upload_before_commit@3",
        "after_spool_write@2",
        "after_commit@2",
        "after_write_before_commit@4",
    ],
)
def test_a_crash_at_a_fault_point_then_restart_is_still_exactly_once(
    lake_settings: Settings, minio_client: Minio, tmp_path: Path, fault: str
) -> None:
    records = readings_series(METERS, PER_METER)
    produce_readings(lake_settings, records, ticks_every=131)
    env = _lake_env(lake_settings, METERSTREAM_LAKE_FILE_MAX_AGE="2s")
    crash_at_fault_point("lake", lake_settings, tmp_path / "lake.log", fault, **env)
    restarted = start_sink("lake", lake_settings, tmp_path / "restarted.log", **env)
    try:
        with Ticker(lake_settings):  # closes the last files by age while the sink runs
            wait_for(
                lambda: (
                    sum(_lake_offsets(minio_client, lake_settings.lake.bucket).values())
                    >= len(records)
                ),
                "the whole topic in the lake after the restart",
            )
    finally:
        assert restarted.stop() == 0, restarted.output()[-3000:]
    _assert_exactly_once(minio_client, lake_settings.lake.bucket, len(records))


def test_minio_cut_off_for_30_s_loses_nothing(
    lake_settings: Settings, minio_client: Minio, tmp_path: Path, s3_service: Any
) -> None:
    host, port = lake_settings.s3.host.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    proxied = lake_settings.model_copy(
        update={
            "s3": S3Settings(
                endpoint=f"http://127.0.0.1:{proxy.port}",
                access_key=lake_settings.s3.access_key,
                secret_key=lake_settings.s3.secret_key,
            )
        }
    )
    first = readings_series(METERS, 200)
    produce_readings(proxied, first)
    env = _lake_env(proxied, METERSTREAM_LAKE_FILE_MAX_AGE="2s")
    sink = start_sink("lake", proxied, tmp_path / "lake.log", **env)
    try:
        with Ticker(proxied):
            wait_for(
                lambda: sum(_lake_offsets(minio_client, proxied.lake.bucket).values()) >= 700,
                "the first upload",
            )
            with proxy.outage():
                second = readings_series(METERS, 400, start_us=T0_US + 200 * 10_000_000)
                produce_readings(proxied, second)
                time.sleep(30)
                assert sink.process.poll() is None, "the sink died during the outage"
            wait_for(
                lambda: (
                    sum(_lake_offsets(minio_client, proxied.lake.bucket).values())
                    >= len(first) + len(second)
                ),
                "uploads after the outage",
                timeout_s=120,
            )
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
        proxy.close()
    _assert_exactly_once(minio_client, proxied.lake.bucket, len(first) + len(second))
    assert "partitions paused" in sink.output()


def test_a_poison_record_goes_to_the_dlq_and_the_lake_sink_keeps_going(
    lake_settings: Settings, minio_client: Minio, tmp_path: Path
) -> None:
    from meterstream.dlq import read_dead_letters

    records = readings_series(2, 50)
    produce_readings(lake_settings, records, raw=[b"\x00garbage"])
    produce_readings(lake_settings, readings_series(2, 50, start_us=T0_US + HOUR_US))
    env = _lake_env(lake_settings, METERSTREAM_LAKE_FILE_MAX_AGE="2s")
    sink = start_sink("lake", lake_settings, tmp_path / "lake.log", **env)
    try:
        with Ticker(lake_settings):
            wait_for(
                lambda: sum(_lake_offsets(minio_client, lake_settings.lake.bucket).values()) >= 200,
                "every good reading in the lake",
            )
        letters = list(read_dead_letters(lake_settings, 5))
        assert len(letters) == 1
        assert letters[0].value == b"\x00garbage"
        assert "DecodeError" in letters[0].headers["meterstream-error-type"]
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
    _assert_exactly_once(minio_client, lake_settings.lake.bucket, 200)


def test_bucket_is_created_with_the_lifecycle_rule(
    settings_factory: Callable[..., Settings], minio_client: Minio, tmp_path: Path, unique_id: str
) -> None:
    from sinks.lake.store import LIFECYCLE_RULE_ID, LakeStore

    settings = settings_factory(s3=True)
    bucket = f"lake-{unique_id}"
    store = LakeStore(settings.s3, bucket)
    try:
        assert "created" in store.ensure_bucket(expire_after_days=30)
        rules = minio_client.get_bucket_lifecycle(bucket).rules
        assert [(r.rule_id, r.expiration.days) for r in rules] == [(LIFECYCLE_RULE_ID, 30)]
        assert "kept" in store.ensure_bucket(expire_after_days=0)
        assert minio_client.get_bucket_lifecycle(bucket) is None
    finally:
        minio_client.remove_bucket(bucket)


def test_compaction_merges_a_day_into_one_file_per_hour_without_changing_rows(
    lake_settings: Settings, minio_client: Minio, tmp_path: Path
) -> None:
    from sinks.lake.compact import CompactionRefused, compact_day

    records = readings_series(METERS, PER_METER)
    produce_readings(lake_settings, records)
    env = _lake_env(lake_settings, METERSTREAM_LAKE_FILE_MAX_AGE="2s")
    sink = start_sink("lake", lake_settings, tmp_path / "lake.log", **env)
    try:
        with Ticker(lake_settings):
            wait_for(
                lambda: (
                    sum(_lake_offsets(minio_client, lake_settings.lake.bucket).values())
                    >= len(records)
                ),
                "files",
            )
    finally:
        assert sink.stop() == 0
    before, names_before = lake_table(minio_client, lake_settings.lake.bucket)
    with pytest.raises(CompactionRefused, match="days old"):
        list(compact_day(lake_settings, "2026-01-01", today=date(2026, 1, 4)))
    lines = list(compact_day(lake_settings, "2026-01-01", force=True))
    after, names_after = lake_table(minio_client, lake_settings.lake.bucket)
    assert len(names_after) == 2 < len(names_before), lines
    assert sorted(before.column("kafka_offset").to_pylist()) == sorted(
        after.column("kafka_offset").to_pylist()
    )
    again = list(compact_day(lake_settings, "2026-01-01", force=True))
    assert all("nothing to merge" in line for line in again[:-1]), again
