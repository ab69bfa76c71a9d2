"""Reset one app id's worker state: group offsets, changelog topics, local RocksDB tables."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from meterstream.errors import MeterstreamError
from meterstream.kafka.clients import admin_config
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings
from schemas.topics import changelog_topics


def reset_worker(settings: Settings) -> Iterator[str]:
    app_id = settings.worker.app_id
    admin = AdminClient(admin_config(settings.kafka))
    group = admin.describe_consumer_groups([app_id])[app_id].result(timeout=30)
    if group.members:
        raise MeterstreamError(
            f"consumer group {app_id!r} has {len(group.members)} active member(s): stop the "
            "worker(s) first"
        )
    try:
        admin.delete_consumer_groups([app_id])[app_id].result(timeout=30)
        yield f"deleted the offsets of consumer group {app_id}"
    except KafkaException as exc:
        if exc.args[0].name() != "GROUP_ID_NOT_FOUND":
            raise
        yield f"consumer group {app_id} had no offsets"
    specs = changelog_topics(
        app_id,
        partitions=settings.kafka.partitions,
        replication_factor=settings.kafka.replication_factor,
    )
    futures = admin.delete_topics([s.name for s in specs], operation_timeout=30)
    for name, future in futures.items():
        try:
            future.result()
            yield f"deleted changelog {name}"
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
    for _ in range(50):  # topic deletion completes asynchronously
        try:
            ensure_topics(settings, specs)
            break
        except MeterstreamError:
            time.sleep(0.2)
    yield f"re-created {len(specs)} empty changelog topics"
    tables = list(settings.worker.data_dir.glob("v*/tables"))
    for path in tables:
        shutil.rmtree(path, ignore_errors=True)
    yield (
        f"removed local tables under {settings.worker.data_dir}"
        if tables
        else "no local tables to remove"
    )
