"""Build the lake sink from the settings and run it."""

from __future__ import annotations

import logging

from meterstream.faults import arm
from meterstream.kafka.topics import check_topics
from meterstream.settings import Settings
from schemas.topics import READINGS, READINGS_DLQ
from sinks.lake.destination import LakeDestination
from sinks.lake.spool import clean_spool
from sinks.lake.store import LakeStore
from sinks.runtime.loop import LoopConfig, SinkLoop
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.runner import codec_for, run_loop, when_reachable

log = logging.getLogger(__name__)


def prepare_bucket(settings: Settings, store: LakeStore) -> None:
    """Create the bucket and apply the lifecycle rule, waiting for S3 to come up first."""
    lake = settings.lake
    done = when_reachable(
        lambda: store.ensure_bucket(lake.expire_after_days),
        "S3",
        lake.retry_initial,
        lake.retry_max,
    )
    log.info("lake: %s", done)


def build_lake_sink(settings: Settings, store: LakeStore) -> SinkLoop:
    topic = settings.kafka.topic_prefix + READINGS
    lake = settings.lake
    metrics = SinkMetrics("lake")
    destination = LakeDestination(lake, store, metrics)
    config = LoopConfig(
        group_id=lake.group_id,
        topics={topic: codec_for(settings, "Reading", topic)},
        dlq_topic=settings.kafka.topic_prefix + READINGS_DLQ,
        retry_initial=lake.retry_initial,
        retry_max=lake.retry_max,
        session_timeout=lake.session_timeout,
    )
    return SinkLoop(settings.kafka, config, destination, metrics)


def run_lake_sink(settings: Settings) -> int:
    arm(settings.fault)
    prefix = settings.kafka.topic_prefix
    check_topics(settings, [prefix + READINGS, prefix + READINGS_DLQ])
    lake = settings.lake
    lake.spool_dir.mkdir(parents=True, exist_ok=True)
    clean_spool(lake.spool_dir)
    store = LakeStore(settings.s3, lake.bucket)
    prepare_bucket(settings, store)
    loop = build_lake_sink(settings, store)
    log.info(
        "lake sink starting: group=%s topic=%s s3=%s bucket=%s spool=%s file rules: hour change, "
        "%d rows, %.0f s of broker time",
        lake.group_id,
        prefix + READINGS,
        settings.s3.endpoint,
        lake.bucket,
        lake.spool_dir,
        lake.file_max_rows,
        lake.file_max_age,
    )
    code = run_loop(settings, loop)
    log.info("lake sink stopped (exit %d)", code)
    return code
