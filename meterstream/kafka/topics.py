"""Create meterstream's topics idempotently and check live topics against the settings.

`meterstream topics create` and every process's start-up check use this module, so a topic
with the wrong partition count is refused everywhere instead of silently splitting meters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from meterstream.errors import MeterstreamError, TopicMismatchError
from meterstream.kafka.clients import admin_config
from meterstream.settings import Settings
from schemas.topics import TopicSpec, changelog_topics, contract_topics

log = logging.getLogger(__name__)

Outcome = Literal["created", "exists", "updated"]
_TIMEOUT_S = 30.0


class KafkaUnavailableError(MeterstreamError):
    """Kafka did not answer: check METERSTREAM_KAFKA_BOOTSTRAP_SERVERS and that the broker runs."""


@dataclass(frozen=True)
class TopicResult:
    spec: TopicSpec
    outcome: Outcome
    changed_configs: tuple[str, ...] = ()


def all_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The contract topics plus the changelogs of the configured worker app id."""
    kafka = settings.kafka
    specs = contract_topics(
        prefix=kafka.topic_prefix,
        partitions=kafka.partitions,
        replication_factor=kafka.replication_factor,
        compression=kafka.compression,
        readings_retention_hours=kafka.readings_retention_hours,
        scores_retention_hours=kafka.scores_retention_hours,
        dlq_retention_hours=kafka.dlq_retention_hours,
    )
    specs += changelog_topics(
        settings.worker.app_id,
        partitions=kafka.partitions,
        replication_factor=kafka.replication_factor,
    )
    return specs


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(admin_config(settings.kafka))


def _live_partitions(admin: AdminClient, names: Sequence[str]) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka (METERSTREAM_KAFKA_BOOTSTRAP_SERVERS): {exc.args[0]}"
        ) from exc
    return {
        name: len(metadata.topics[name].partitions)
        for name in names
        if name in metadata.topics and metadata.topics[name].error is None
    }


def ensure_topics(
    settings: Settings, specs: Sequence[TopicSpec] | None = None
) -> list[TopicResult]:
    """Create missing topics, align configs of existing ones, refuse partition mismatches."""
    specs = list(all_topic_specs(settings) if specs is None else specs)
    admin = _admin(settings)
    live = _live_partitions(admin, [s.name for s in specs])
    _refuse_mismatch(specs, live)

    results: list[TopicResult] = []
    missing = [s for s in specs if s.name not in live]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
                for s in missing
            ],
            operation_timeout=_TIMEOUT_S,
            request_timeout=_TIMEOUT_S,
        )
        for spec in missing:
            try:
                futures[spec.name].result()
                results.append(TopicResult(spec, "created"))
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise MeterstreamError(
                        f"cannot create topic {spec.name}: {exc.args[0]}"
                    ) from exc
                # Another process created it between our metadata read and the create: recheck.
                _refuse_mismatch([spec], _live_partitions(admin, [spec.name]))
                results.append(TopicResult(spec, "exists"))
    for spec in specs:
        if spec.name in live:
            changed = _align_configs(admin, spec)
            results.append(TopicResult(spec, "updated" if changed else "exists", tuple(changed)))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(results, key=lambda r: order[r.spec.name])


def _refuse_mismatch(specs: Sequence[TopicSpec], live: dict[str, int]) -> None:
    for spec in specs:
        actual = live.get(spec.name)
        if actual is not None and actual != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name} has {actual} partitions but METERSTREAM_KAFKA_PARTITIONS="
                f"{spec.partitions}; meters would move between partitions and lose their state. "
                f"Set METERSTREAM_KAFKA_PARTITIONS={actual}, or delete and re-create the topics."
            )


def _align_configs(admin: AdminClient, spec: TopicSpec) -> list[str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    described = admin.describe_configs([resource], request_timeout=_TIMEOUT_S)[resource].result()
    drift = [
        key
        for key, wanted in spec.config.items()
        if key not in described or described[key].value != wanted
    ]
    if not drift:
        return []
    entries = [
        ConfigEntry(key, spec.config[key], incremental_operation=AlterConfigOpType.SET)
        for key in drift
    ]
    alter = ConfigResource(ConfigResource.Type.TOPIC, spec.name, incremental_configs=entries)
    admin.incremental_alter_configs([alter], request_timeout=_TIMEOUT_S)[alter].result()
    log.info("topic %s: updated configs %s", spec.name, ", ".join(drift))
    return drift


def check_topics(settings: Settings, names: Sequence[str]) -> None:
    """Start-up check of a process: its topics exist and have the configured partition count.

    Raises :class:`TopicMismatchError` with the remedy when they don't.
    """
    live = _live_partitions(_admin(settings), names)
    missing = [n for n in names if n not in live]
    if missing:
        raise TopicMismatchError(
            f"topics missing: {', '.join(missing)}; run `meterstream topics create` first"
        )
    wanted = settings.kafka.partitions
    _refuse_mismatch([TopicSpec(n, wanted, 1) for n in names], live)
