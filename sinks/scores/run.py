"""Build the scores sink from the settings and run it (the CLI's entry into this package)."""

from __future__ import annotations

import logging

import psycopg

from meterstream.faults import arm
from meterstream.kafka.topics import check_topics
from meterstream.settings import Settings
from schemas.topics import READINGS, READINGS_DLQ, SCORES
from sinks.runtime.destination import StoreUnavailable
from sinks.runtime.loop import LoopConfig, SinkLoop
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.runner import codec_for, run_loop, when_reachable
from sinks.scores.destination import ScoresDestination, connect
from sinks.scores.rows import READINGS as READINGS_TABLE
from sinks.scores.rows import SCORES as SCORES_TABLE
from sinks.scores.rows import TableSpec

log = logging.getLogger(__name__)


def migrate_when_reachable(settings: Settings) -> None:
    """Apply pending migrations, waiting (with backoff) for PostgreSQL to come up first."""
    from sinks.db.migrate import MigrationReport, migrate

    def apply() -> MigrationReport:
        with connect(settings.postgres, "meterstream-migrate") as conn:
            return migrate(conn, settings.db)

    report = when_reachable(
        apply,
        "PostgreSQL",
        settings.scores.retry_initial,
        settings.scores.retry_max,
        transient=(StoreUnavailable, psycopg.OperationalError),
    )
    applied = ", ".join(report.applied) or "none pending"
    log.info("database schema (%s path): migrations applied: %s", report.path, applied)


def build_scores_sink(settings: Settings) -> SinkLoop:
    prefix = settings.kafka.topic_prefix
    sink = settings.scores
    tables: dict[str, TableSpec] = {prefix + SCORES: SCORES_TABLE}
    if sink.readings:
        tables[prefix + READINGS] = READINGS_TABLE
    codecs = {
        prefix + SCORES: codec_for(settings, "AnomalyScore", prefix + SCORES),
        **(
            {prefix + READINGS: codec_for(settings, "Reading", prefix + READINGS)}
            if sink.readings
            else {}
        ),
    }
    metrics = SinkMetrics("scores")
    destination = ScoresDestination(settings.postgres, sink, tables, metrics)
    config = LoopConfig(
        group_id=sink.group_id,
        topics=codecs,
        dlq_topic=prefix + READINGS_DLQ,
        retry_initial=sink.retry_initial,
        retry_max=sink.retry_max,
        poll_batch=min(2000, sink.batch_rows),
        session_timeout=sink.session_timeout,
    )
    return SinkLoop(settings.kafka, config, destination, metrics)


def run_scores_sink(settings: Settings) -> int:
    arm(settings.fault)
    prefix = settings.kafka.topic_prefix
    topics = [prefix + SCORES, prefix + READINGS_DLQ]
    if settings.scores.readings:
        topics.append(prefix + READINGS)
    check_topics(settings, topics)
    if settings.db.migrate_on_start:
        migrate_when_reachable(settings)
    loop = build_scores_sink(settings)
    log.info(
        "scores sink starting: group=%s topics=%s postgres=%s batch=%d rows or %.1f s",
        settings.scores.group_id,
        ", ".join(sorted(loop.config.topics)),
        settings.postgres.dsn,
        settings.scores.batch_rows,
        settings.scores.batch_max_age,
    )
    code = run_loop(settings, loop)
    log.info("scores sink stopped (exit %d)", code)
    return code
