"""confluent-kafka client configurations shared by every component.

One place decides how meterstream talks to Kafka, so the partitioner and the delivery
guarantees cannot drift apart between the connector, the sinks and the tools.
"""

from __future__ import annotations

import logging
from typing import Any

from meterstream.settings import KafkaSettings

# librdkafka logs through Python logging (and so through the secret redaction), not to stderr.
_LOGGING: dict[str, Any] = {"logger": logging.getLogger("librdkafka")}


def producer_config(kafka: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, acks=all producer that partitions like Java, aiokafka and Faust.

    ``murmur2_random`` is librdkafka's name for Java's default partitioner: murmur2 for keyed
    records (null keys are spread randomly, which no meterstream topic uses). librdkafka's own
    default, ``consistent_random``, would put a meter on a different partition than the worker
    expects.
    """
    config: dict[str, Any] = {
        **kafka.client_config(),
        **_LOGGING,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": kafka.compression,
        "linger.ms": 20,
    }
    config.update(overrides)
    return config


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what the caller says is durable."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        **_LOGGING,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }
    config.update(overrides)
    return config


def admin_config(kafka: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {**kafka.client_config(), **_LOGGING}
    config.update(overrides)
    return config
