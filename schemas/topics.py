"""Topic names, record kinds and header names: the Kafka half of the contract.

Every component takes names and configs from here, so nothing depends on broker-side
auto-creation and nothing spells a topic name twice.

Keys are the raw UTF-8 ``meter_id`` (never registry-framed) on every keyed topic, and every
producer partitions with murmur2, the hash Java, aiokafka and Faust use, so one meter always
lands on one partition whoever wrote it.

Ticks: besides ``Reading`` records, the readings topic carries *ticks*: a record with a null
value, an empty key (aiokafka refuses a record with neither) and the header
``meterstream-kind: tick``, sent to an explicit partition. The
readings topic uses broker append time, so a tick's timestamp and a reading's timestamp come from
the same clock, and the worker can tell that a meter has gone silent without trusting any
producer's wall clock. Every consumer checks :func:`is_tick` before decoding and skips ticks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

READINGS: Final = "meter.readings.v1"
SCORES: Final = "meter.anomaly-scores.v1"
READINGS_DLQ: Final = "meter.readings.dlq"

# Header that tells a tick from a reading; consumers check it before any Avro decode.
KIND_HEADER: Final = "meterstream-kind"
KIND_TICK: Final = b"tick"
TICK_KEY: Final = b""

# Headers on a dead letter: why it failed and where it came from.
DLQ_ERROR_HEADER: Final = "meterstream-error"
DLQ_ERROR_TYPE_HEADER: Final = "meterstream-error-type"
DLQ_SOURCE_TOPIC_HEADER: Final = "meterstream-source-topic"
DLQ_SOURCE_PARTITION_HEADER: Final = "meterstream-source-partition"
DLQ_SOURCE_OFFSET_HEADER: Final = "meterstream-source-offset"

# The Faust worker's tables; `topics create` makes their changelogs ahead of the worker
# ("{app_id}-{table}-changelog") so none of them depends on Faust's own topic declaration.
WORKER_TABLES: Final = ("meter-state", "meter-snapshots")

# Snapshot chunks stay far below Kafka's default 1 MB record limit; the changelog allows twice
# that again so a chunk plus its key and headers is never rejected.
SNAPSHOT_CHUNK_BYTES: Final = 256 * 1024
CHANGELOG_MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024

_HOUR_MS: Final = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    """What a topic must look like: the one definition `topics create` and start-up checks use."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)
    purpose: str = ""


def is_tick(headers: Iterable[tuple[str, bytes | None]] | None) -> bool:
    """True when a record's headers mark it as a tick (works for aiokafka and confluent-kafka)."""
    if not headers:
        return False
    return any(key == KIND_HEADER and value == KIND_TICK for key, value in headers)


def tick_headers() -> list[tuple[str, bytes]]:
    return [(KIND_HEADER, KIND_TICK)]


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust uses for ``table`` of the app ``app_id``."""
    return f"{app_id}-{table}-changelog"


def contract_topics(
    *,
    prefix: str,
    partitions: int,
    replication_factor: int,
    compression: str,
    readings_retention_hours: int,
    scores_retention_hours: int,
    dlq_retention_hours: int,
) -> list[TopicSpec]:
    """The data topics every deployment has."""
    common = {"compression.type": "producer" if compression == "none" else compression}
    return [
        TopicSpec(
            prefix + READINGS,
            partitions,
            replication_factor,
            {
                **common,
                "cleanup.policy": "delete",
                "retention.ms": str(readings_retention_hours * _HOUR_MS),
                # Broker append time: readings and ticks share one arrival clock (see module doc).
                "message.timestamp.type": "LogAppendTime",
            },
            "Reading records and ticks, key = meter_id",
        ),
        TopicSpec(
            prefix + SCORES,
            partitions,
            replication_factor,
            {
                **common,
                "cleanup.policy": "delete",
                "retention.ms": str(scores_retention_hours * _HOUR_MS),
            },
            "AnomalyScore records, key = meter_id",
        ),
        TopicSpec(
            prefix + READINGS_DLQ,
            partitions,
            replication_factor,
            {
                **common,
                "cleanup.policy": "delete",
                "retention.ms": str(dlq_retention_hours * _HOUR_MS),
            },
            "records that could not be processed, with the error in headers",
        ),
    ]


def changelog_topics(
    app_id: str, *, partitions: int, replication_factor: int, tables: Sequence[str] = WORKER_TABLES
) -> list[TopicSpec]:
    """The worker's changelogs: compacted, with small segments so restores stay short."""
    config = {
        "cleanup.policy": "compact",
        # The active segment is never compacted; with the 7-day default a restore would read
        # every snapshot written that week. Hourly segments and an eager cleaner keep it short.
        "segment.ms": str(_HOUR_MS),
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": str(_HOUR_MS),
        "max.message.bytes": str(CHANGELOG_MAX_MESSAGE_BYTES),
    }
    return [
        TopicSpec(
            changelog_topic(app_id, table),
            partitions,
            replication_factor,
            config,
            f"changelog of the worker table {table!r}",
        )
        for table in tables
    ]
