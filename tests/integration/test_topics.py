"""`meterstream topics create` and the one-partitioning rule, against a real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions

from meterstream.errors import TopicMismatchError
from meterstream.kafka.clients import producer_config
from meterstream.kafka.partitioner import partition_for_meter
from meterstream.kafka.topics import all_topic_specs, check_topics, ensure_topics
from meterstream.settings import Settings
from schemas.topics import READINGS, TICK_KEY, tick_headers

METER_IDS = [f"meter-{i}" for i in range(40)] + ["96a14971-525a-4420-aae9-e5aedaa129ff", "zähler-ü"]


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "METERSTREAM_WORKER_APP_ID": settings.worker.app_id,
    }


def _meterstream(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterstream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_create_is_idempotent_and_configures_topics(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    env = _cli_env(settings)
    first = _meterstream("topics", "create", env=env)
    assert first.returncode == 0, first.stderr
    assert "5 created" in first.stdout
    second = _meterstream("topics", "create", env=env)
    assert second.returncode == 0, second.stderr
    assert "0 created, 5 already there" in second.stdout

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    readings = settings.kafka.topic_prefix + READINGS
    metadata = admin.list_topics(timeout=10)
    for spec in all_topic_specs(settings):
        assert len(metadata.topics[spec.name].partitions) == 4
    resource = ConfigResource(ConfigResource.Type.TOPIC, readings)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["message.timestamp.type"].value == "LogAppendTime"
    assert configs["compression.type"].value == "zstd"
    changelog = ConfigResource(
        ConfigResource.Type.TOPIC, f"{settings.worker.app_id}-meter-state-changelog"
    )
    assert (
        admin.describe_configs([changelog])[changelog].result()["cleanup.policy"].value == "compact"
    )


def test_config_drift_is_repaired(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    shorter = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"readings_retention_hours": 2})}
    )
    results = {r.spec.name: r for r in ensure_topics(shorter)}
    readings = results[settings.kafka.topic_prefix + READINGS]
    assert readings.outcome == "updated"
    assert readings.changed_configs == ("retention.ms",)


def test_a_partition_mismatch_is_refused_everywhere(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    readings = settings.kafka.topic_prefix + READINGS
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    admin.create_partitions([NewPartitions(readings, 6)])[readings].result(timeout=30)
    for _ in range(50):  # metadata catches up with the new partitions asynchronously
        if len(admin.list_topics(readings, timeout=10).topics[readings].partitions) == 6:
            break
        time.sleep(0.2)

    with pytest.raises(TopicMismatchError, match="has 6 partitions"):
        ensure_topics(settings)
    with pytest.raises(TopicMismatchError, match="METERSTREAM_KAFKA_PARTITIONS=6"):
        check_topics(settings, [readings])
    result = _meterstream("topics", "create", env=_cli_env(settings))
    assert result.returncode == 1
    assert "has 6 partitions" in result.stderr


def test_confluent_and_aiokafka_put_each_meter_on_the_same_partition(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    topic = settings.kafka.topic_prefix + READINGS

    confluent_partitions: dict[str, int] = {}

    def remember(meter_id: str) -> Callable[[object, object], None]:
        def on_delivery(err: object, message: object) -> None:
            assert err is None
            confluent_partitions[meter_id] = message.partition()  # type: ignore[attr-defined]

        return on_delivery

    producer = Producer(producer_config(settings.kafka))
    for meter_id in METER_IDS:
        producer.produce(topic, key=meter_id.encode(), value=b"x", on_delivery=remember(meter_id))
    assert producer.flush(30) == 0

    async def aiokafka_partitions() -> dict[str, int]:
        aio = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
        await aio.start()
        try:
            found = {}
            for meter_id in METER_IDS:
                metadata = await aio.send_and_wait(topic, key=meter_id.encode(), value=b"x")
                found[meter_id] = metadata.partition
            return found
        finally:
            await aio.stop()

    aio_partitions = asyncio.run(aiokafka_partitions())
    expected = {m: partition_for_meter(m, settings.kafka.partitions) for m in METER_IDS}
    assert confluent_partitions == expected
    assert aio_partitions == expected
    assert len(set(expected.values())) == settings.kafka.partitions  # the keys do spread


def test_ticks_go_to_an_explicit_partition_with_append_time(
    settings_factory: Callable[..., Settings],
) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition

    settings = settings_factory()
    ensure_topics(settings)
    topic = settings.kafka.topic_prefix + READINGS
    producer = Producer(producer_config(settings.kafka))
    producer.produce(topic, key=TICK_KEY, value=None, partition=2, headers=tick_headers())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "tick-check"}
    )
    consumer.assign([TopicPartition(topic, 2, 0)])
    try:
        message = consumer.poll(20)
        assert message is not None
        assert message.error() is None
        assert message.value() is None
        assert message.key() == TICK_KEY
        assert message.headers() == [("meterstream-kind", b"tick")]
        kind, _ = message.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
    finally:
        consumer.close()
