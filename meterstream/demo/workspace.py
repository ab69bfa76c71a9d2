"""The demo's data directory: one demo at a time, and the previous run cleared away.

Layout under ``--data-dir`` (default ``.meterstream/demo``): ``logs/`` (one file per child),
``worker/`` (RocksDB tables), ``lake-spool/``, ``connector/``, ``labels.jsonl`` (the injected
anomalies) and ``run.json`` (the last run's Kafka names). A new run deletes the previous run's
topics and consumer groups, which nothing reads any more, and its local state; its scores in
PostgreSQL and its files in the lake stay where they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from meterstream.demo.plan import DemoPlan
from meterstream.errors import MeterstreamError
from meterstream.settings import Settings

log = logging.getLogger(__name__)

_ADMIN_TIMEOUT_S = 15.0


class DemoBusyError(MeterstreamError):
    """Another `meterstream demo` runs with this data directory: stop it or use --data-dir."""


@dataclass
class Workspace:
    """The data directory of the demo, locked for the lifetime of one run."""

    root: Path
    _lock: IO[str] | None = None

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    def lock(self) -> None:
        """Take the directory's lock or raise :class:`DemoBusyError` (released at exit)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / "demo.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DemoBusyError(
                f"another meterstream demo is running with {self.root}; stop it first, "
                "or give this one its own --data-dir"
            ) from None
        self._lock = handle

    def previous_run(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(self.run_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                return loaded
        return {}

    def start_run(self, plan: DemoPlan) -> None:
        """Clear the local state of the last run and record this one."""
        for path in (plan.logs_dir, plan.worker_dir, plan.spool_dir, plan.connector_dir):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        plan.labels_file.unlink(missing_ok=True)
        record = {
            "run_id": plan.run_id,
            "topic_prefix": plan.prefix,
            "app_id": plan.app_id,
            "groups": [plan.scores_group, plan.lake_group, plan.app_id],
        }
        self.run_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def forget_kafka_names(settings: Settings, previous: dict[str, Any]) -> list[str]:
    """Delete the topics and groups of a previous run (best effort); returns what was deleted.

    Only names this data directory's ``run.json`` recorded are touched, and only those starting
    with ``demo.``: whatever else lives on the cluster is none of the demo's business.
    """
    prefix = str(previous.get("topic_prefix") or "")
    app_id = str(previous.get("app_id") or "")
    if not prefix.startswith("demo.") or not app_id.startswith("demo."):
        return []
    from confluent_kafka.admin import AdminClient

    from meterstream.kafka.clients import admin_config

    admin = AdminClient(admin_config(settings.kafka))
    try:
        live = admin.list_topics(timeout=_ADMIN_TIMEOUT_S).topics
    except Exception as exc:
        log.warning("could not list topics to remove the previous demo run's: %s", exc)
        return []
    topics = [name for name in live if name.startswith((prefix, f"{app_id}-"))]
    deleted: list[str] = []
    if topics:
        futures = admin.delete_topics(topics, operation_timeout=_ADMIN_TIMEOUT_S)
        for name, future in futures.items():
            with contextlib.suppress(Exception):
                future.result()
                deleted.append(name)
    groups = [str(g) for g in previous.get("groups") or [] if str(g).startswith("demo.")]
    if groups:
        # Groups whose members are gone; a group Kafka does not know is simply skipped.
        with contextlib.suppress(Exception):
            for future in admin.delete_consumer_groups(
                groups, request_timeout=_ADMIN_TIMEOUT_S
            ).values():
                with contextlib.suppress(Exception):
                    future.result()
    return deleted
