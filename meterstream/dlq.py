"""`meterstream dlq list|replay`: look at dead letters and send them back once fixed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import click
from confluent_kafka import Consumer, Producer, TopicPartition

from meterstream.kafka.clients import consumer_config, producer_config
from meterstream.settings import Settings
from schemas.topics import (
    DLQ_ERROR_HEADER,
    DLQ_ERROR_TYPE_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
    READINGS_DLQ,
)


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def read_dead_letters(settings: Settings, limit: int | None = None) -> Iterator[DeadLetter]:
    topic = settings.kafka.topic_prefix + READINGS_DLQ
    consumer = Consumer(consumer_config(settings.kafka, "meterstream-dlq-reader"))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        seen = 0
        deadline = time.monotonic() + 60
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is not None:
                    continue
                headers = {
                    name: bytes(raw or b"").decode("utf-8", "replace")
                    for name, raw in cast(list[tuple[str, bytes | None]], message.headers() or [])
                }
                partition, offset = int(message.partition() or 0), int(message.offset() or 0)
                key, value = message.key(), message.value()
                yield DeadLetter(
                    partition,
                    offset,
                    message.timestamp()[1],
                    bytes(key) if key is not None else None,
                    bytes(value) if value is not None else None,
                    headers,
                )
                seen += 1
                if limit is not None and seen >= limit:
                    return
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
    finally:
        consumer.close()


@click.group("dlq")
def dlq_command() -> None:
    """Inspect and replay dead letters (records that could not be processed)."""


@dlq_command.command("list")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
def dlq_list(limit: int) -> None:
    """Print dead letters: where they came from and why they failed."""
    from meterstream.clicontext import CliContext

    settings = click.get_current_context().ensure_object(CliContext).settings
    count = 0
    for letter in read_dead_letters(settings, limit):
        count += 1
        h = letter.headers
        click.echo(
            f"{letter.partition}@{letter.offset}  from {h.get(DLQ_SOURCE_TOPIC_HEADER, '?')}"
            f"[{h.get(DLQ_SOURCE_PARTITION_HEADER, '?')}]@{h.get(DLQ_SOURCE_OFFSET_HEADER, '?')}  "
            f"{h.get(DLQ_ERROR_TYPE_HEADER, '?')}: {h.get(DLQ_ERROR_HEADER, '')}"
        )
    click.echo(f"{count} dead letter(s) shown")


@dlq_command.command("replay")
@click.option(
    "--error-type",
    default="",
    help="Only letters whose error type is this (e.g. UnknownSchemaError).",
)
def dlq_replay(error_type: str) -> None:
    """Send dead letters back to the topic they came from (after fixing the cause)."""
    from meterstream.clicontext import CliContext

    settings = click.get_current_context().ensure_object(CliContext).settings
    producer = Producer(producer_config(settings.kafka))
    sent = 0
    for letter in read_dead_letters(settings):
        if error_type and letter.headers.get(DLQ_ERROR_TYPE_HEADER) != error_type:
            continue
        source = letter.headers.get(DLQ_SOURCE_TOPIC_HEADER)
        if not source:
            continue
        producer.produce(source, key=letter.key, value=letter.value)
        sent += 1
    producer.flush(30)
    click.echo(f"replayed {sent} dead letter(s) to their source topics")
