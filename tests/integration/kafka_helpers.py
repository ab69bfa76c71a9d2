"""Reading a topic back in tests: every record, ticks separated, values decoded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import AvroCodec
from schemas.topics import is_tick


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]


def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout_s: float = 30.0,
    idle_s: float = 3.0,
) -> list[Consumed]:
    """Everything on ``topic`` (ticks left out): until ``expect`` records, or ``idle_s`` of quiet."""
    codec = AvroCodec.for_schema("Reading")
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    found: list[Consumed] = []
    deadline = time.monotonic() + timeout_s
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(1000, timeout=0.5)
            for message in messages:
                if message.error() is not None or is_tick(message.headers()):
                    continue
                value = codec.decode(
                    message.value(),
                    topic=topic,
                    partition=message.partition(),
                    offset=message.offset(),
                )
                found.append(Consumed(message.partition(), message.offset(), message.key(), value))
                last_record = time.monotonic()
            if expect is not None and len(found) >= expect and not messages:
                break
            if expect is None and time.monotonic() - last_record > idle_s:
                break
    finally:
        consumer.close()
    return found
