"""Start the worker process: data dir hygiene, topic checks, health server, Faust worker."""

from __future__ import annotations

import logging
import sys

import faust

from meterstream.faults import arm
from meterstream.health import HealthServer
from meterstream.kafka.topics import check_topics
from meterstream.settings import Settings
from schemas.topics import READINGS, READINGS_DLQ, SCORES, changelog_topic
from streams.app import WorkerApp, mark_clean_stop, prepare_data_dir

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    arm(settings.fault)
    worker_settings = settings.worker
    prefix = settings.kafka.topic_prefix
    check_topics(
        settings,
        [prefix + READINGS, prefix + SCORES, prefix + READINGS_DLQ]
        + [changelog_topic(worker_settings.app_id, t) for t in ("meter-state", "meter-snapshots")],
    )
    prepare_data_dir(worker_settings.data_dir)
    app = WorkerApp(settings)
    log.info(
        "worker starting: app_id=%s model_id=%s bootstrap=%s partitions=%d data_dir=%s",
        worker_settings.app_id,
        app.core.model_id,
        settings.kafka.bootstrap_servers,
        settings.kafka.partitions,
        worker_settings.data_dir,
    )
    health = None
    if worker_settings.web_port:
        health = HealthServer(
            app.metrics.registry, app.ready, settings.metrics.host, worker_settings.web_port
        )
        health.start()
    worker = faust.Worker(
        app.app, loglevel=settings.log.level.lower(), quiet=True, override_logging=False
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        if health is not None:
            health.stop()
    if code == 0:
        mark_clean_stop(worker_settings.data_dir)
        log.info("worker stopped cleanly")
    sys.stdout.flush()
    return code
