"""One consumed Kafka record as the sinks see it, and the offsets they commit.

The runtime decodes (or skips, or dead-letters) each message once; destinations get plain values
and never touch a Kafka client, which keeps them testable without a broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

TopicPartition = tuple[str, int]
"""(topic, partition): the unit of ordering, assignment and commits."""


class Consumed(NamedTuple):
    """A decoded record with its Kafka coordinates.

    ``value`` is None for records that carry no row: ticks, and dead letters (already sent to the
    DLQ). They still count for the commit position and, on the lake, for the file age rule.
    A named tuple rather than a frozen dataclass: one is built per record, and tuples are the
    cheapest immutable objects to build.
    """

    topic: str
    partition: int
    offset: int
    timestamp_us: int  # the broker's append time on the readings topic (LogAppendTime)
    value: Mapping[str, Any] | None

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)
