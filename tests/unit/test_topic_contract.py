"""Topic names and configs are defined once; ticks are recognised before any decode."""

from __future__ import annotations

from meterstream.kafka.topics import all_topic_specs
from meterstream.settings import KafkaSettings, WorkerSettings, load_settings
from schemas.topics import (
    CHANGELOG_MAX_MESSAGE_BYTES,
    READINGS,
    SNAPSHOT_CHUNK_BYTES,
    is_tick,
    tick_headers,
)


def test_all_topics_share_the_partition_count_and_prefix() -> None:
    settings = load_settings(
        env_file_paths=(),
        kafka=KafkaSettings(partitions=6, topic_prefix="lab.", replication_factor=3),
        worker=WorkerSettings(app_id="model-a"),
    )
    specs = all_topic_specs(settings)
    names = [s.name for s in specs]
    assert names == [
        "lab.meter.readings.v1",
        "lab.meter.anomaly-scores.v1",
        "lab.meter.readings.dlq",
        "model-a-meter-state-changelog",
        "model-a-meter-snapshots-changelog",
    ]
    assert {s.partitions for s in specs} == {6}
    assert {s.replication_factor for s in specs} == {3}


def test_readings_use_broker_append_time_and_changelogs_are_compacted() -> None:
    specs = {s.name: s for s in all_topic_specs(load_settings(env_file_paths=()))}
    assert specs[READINGS].config["message.timestamp.type"] == "LogAppendTime"
    changelog = specs["meterstream-worker-meter-state-changelog"].config
    assert changelog["cleanup.policy"] == "compact"
    assert int(changelog["segment.ms"]) <= 3_600_000
    assert int(changelog["max.message.bytes"]) >= 2 * SNAPSHOT_CHUNK_BYTES
    assert CHANGELOG_MAX_MESSAGE_BYTES >= 2 * SNAPSHOT_CHUNK_BYTES


def test_tick_detection() -> None:
    assert is_tick(tick_headers())
    assert is_tick([("other", b"x"), ("meterstream-kind", b"tick")])
    assert not is_tick(None)
    assert not is_tick([])
    assert not is_tick([("meterstream-kind", b"reading")])
