"""The contract on the wire: Avro through a real broker in both framings, read by both."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from meterstream.kafka.clients import producer_config
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.registry import ConfluentRegistry, value_subject
from schemas.topics import READINGS

READINGS_TO_SEND = [
    {
        "meter_id": f"meter-{i % 3}",
        "source": "simulator",
        "ts": 1_767_225_600_000_000 + i * 2_000_000,
        "ts_offset_minutes": 60,
        "received_at": 1_767_225_600_100_000 + i * 2_000_000,
        "power_w": 500.0 + i,
        "voltage_l1_v": 230.1 if i % 5 == 0 else None,
        "currency": "NOK" if i % 7 == 0 else None,
    }
    for i in range(30)
]


def _roundtrip(settings: Settings, writer: AvroCodec, readers: list[AvroCodec]) -> None:
    ensure_topics(settings)
    topic = settings.kafka.topic_prefix + READINGS
    producer = Producer(producer_config(settings.kafka))
    for reading in READINGS_TO_SEND:
        producer.produce(topic, key=reading["meter_id"].encode(), value=writer.encode(reading))
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"codec-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    messages = []
    try:
        while len(messages) < len(READINGS_TO_SEND):
            batch = consumer.consume(100, timeout=10)
            assert batch, "no records arrived within 10 s"
            messages.extend(m for m in batch if m.error() is None)
    finally:
        consumer.close()
    for reader in readers:
        decoded = sorted(
            (
                reader.decode(
                    m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset()
                )
                for m in messages
            ),
            key=lambda r: r["ts"],
        )
        assert [d["ts"] for d in decoded] == [r["ts"] for r in READINGS_TO_SEND]
        for sent, got in zip(READINGS_TO_SEND, decoded, strict=True):
            for field, value in sent.items():
                assert got[field] == value, field
            assert got["power_production_w"] is None


def test_single_object_encoding_through_kafka(settings_factory: Callable[..., Settings]) -> None:
    codec = AvroCodec.for_schema("Reading")
    _roundtrip(settings_factory(), codec, [codec, AvroCodec.for_schema("Reading")])


@pytest.mark.registry
def test_confluent_framing_through_kafka_with_a_real_registry(
    settings_factory: Callable[..., Settings], schema_registry_service: str
) -> None:
    settings = settings_factory()
    topic = settings.kafka.topic_prefix + READINGS
    registry = ConfluentRegistry(schema_registry_service)
    writer = AvroCodec.for_schema("Reading", registry=registry, subject=value_subject(topic))
    assert writer.schema_id is not None
    # A second process (fresh cache) reads by id; a registry-less reader must refuse, clearly.
    fresh_reader = AvroCodec.for_schema(
        "Reading", registry=ConfluentRegistry(schema_registry_service), subject=value_subject(topic)
    )
    _roundtrip(settings, writer, [writer, fresh_reader])


@pytest.mark.registry
def test_a_registry_reader_also_reads_single_object_frames(
    settings_factory: Callable[..., Settings], schema_registry_service: str
) -> None:
    settings = settings_factory()
    topic = settings.kafka.topic_prefix + READINGS
    registry_reader = AvroCodec.for_schema(
        "Reading", registry=ConfluentRegistry(schema_registry_service), subject=value_subject(topic)
    )
    _roundtrip(settings, AvroCodec.for_schema("Reading"), [registry_reader])


@pytest.mark.registry
def test_the_registry_enforces_full_transitive(
    settings_factory: Callable[..., Settings], schema_registry_service: str
) -> None:
    import json

    from schemas.errors import IncompatibleSchemaError
    from schemas.loader import current_schema

    settings = settings_factory()
    subject = value_subject(settings.kafka.topic_prefix + READINGS)
    registry = ConfluentRegistry(schema_registry_service)
    AvroCodec.for_schema("Reading", registry=registry, subject=subject)
    evolved = current_schema("Reading")
    evolved = {
        **evolved,
        "fields": [
            *evolved["fields"],
            {"name": "phase_count", "type": ["null", "int"], "default": None},
        ],
    }
    assert registry.register(subject, json.dumps(evolved)) > 0  # an optional field: compatible
    broken = {**evolved, "fields": [*evolved["fields"], {"name": "tariff", "type": "string"}]}
    with pytest.raises(IncompatibleSchemaError):
        registry.register(subject, json.dumps(broken))
