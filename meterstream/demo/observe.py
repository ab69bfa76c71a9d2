"""What the running pipeline has produced, read from where it lands, and when it is complete.

Scores come from PostgreSQL (``anomaly_scores``, this run's model ids only), the counters of the
connector and the lake sink from their /metrics endpoints on loopback, and the ground truth from
the simulator's labels file. Reading the stores rather than the processes shows what a user
will find there, and it costs a few small queries a second.

"Done" (for ``--exit-when-done``) means: the connector finished; every home's last window (the
one ending at the end of the simulated span) is in PostgreSQL; and the lake sink has committed
the readings topic up to where it ended when the connector finished, which it does only after
the files holding those readings were uploaded. Should a home's last window never come (a reading
gap at the very end), the demo also counts as done once the lake has caught up and no score has
arrived for :data:`QUIET_S` seconds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from meterstream.demo.plan import DemoPlan
from meterstream.logs import RedactSecrets
from meterstream.settings import Settings
from schemas.topics import READINGS

log = logging.getLogger(__name__)

QUIET_S = 30.0
_DONE_CHECK_EVERY_S = 2.0
_PUBLISHED = re.compile(r"published ([\d,]+) readings")


@dataclass(frozen=True)
class Label:
    """An injected anomaly: ``kind`` on ``meter_id`` over ``[start, end)``."""

    meter_id: str
    start: datetime
    end: datetime
    kind: str


@dataclass(frozen=True)
class WindowRow:
    """One scored window as the view shows it."""

    meter_id: str
    window_start: datetime
    window_end: datetime
    power_w: float | None
    score: float
    threshold: float | None
    is_anomaly: bool
    top_feature: str | None
    label: str | None = None  # kind of a labelled anomaly overlapping the window


@dataclass
class Snapshot:
    """Everything one frame of the view shows."""

    elapsed_s: float = 0.0
    children: list[tuple[str, str]] = field(default_factory=list)  # (name, state)
    readings_published: int | None = None
    windows: int = 0
    anomalies: int = 0
    meters_done: int = 0
    lake_files: int | None = None
    lake_rows: int | None = None
    labels: list[Label] = field(default_factory=list)
    recent: dict[str, list[WindowRow]] = field(default_factory=dict)
    flagged: list[WindowRow] = field(default_factory=list)
    scored_until: datetime | None = None
    note: str = ""
    done: bool = False
    complete: bool = True  # False when "done" came from the quiet fallback


def scrape(port: int) -> dict[str, float]:
    """Totals per metric family name from a child's /metrics (empty when it does not answer)."""
    if not port:
        return {}
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as response:
            text = response.read().decode("utf-8", errors="replace")
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            totals[family.name] = totals.get(family.name, 0.0) + float(sample.value)
    return totals


def published_from_log(path: Path) -> int | None:
    """The connector's own final count, from the summary line it writes when it ends."""
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace")
        matches = _PUBLISHED.findall(text)
        if matches:
            return int(matches[-1].replace(",", ""))
    return None


def read_label_file(path: Path) -> list[Label]:
    """The labels written so far (a line still being written is left for the next read)."""
    from connector.simulator.labels import read_labels
    from schemas.timestamps import micros_to_datetime

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    complete = text[: text.rfind("\n") + 1]
    try:
        labels = read_labels(io.StringIO(complete))
    except ValueError:
        return []
    return [
        Label(
            label.meter_id,
            micros_to_datetime(label.start_us),
            micros_to_datetime(label.end_us),
            label.kind,
        )
        for label in labels
    ]


def label_of(labels: list[Label], meter_id: str, start: datetime, end: datetime) -> str | None:
    for label in labels:
        if label.meter_id == meter_id and label.start < end and label.end > start:
            return label.kind
    return None


_STATS_SQL = """
SELECT meter_id, count(*), count(*) FILTER (WHERE is_anomaly), max(window_end)
FROM anomaly_scores WHERE model_id LIKE %(model)s GROUP BY meter_id ORDER BY meter_id
"""
_RECENT_SQL = """
SELECT meter_id, window_start, window_end, (features->>'power_mean_w')::float8, score,
       threshold, is_anomaly, top_feature
FROM (
    SELECT *, row_number() OVER (PARTITION BY meter_id ORDER BY window_start DESC) AS rn
    FROM anomaly_scores WHERE model_id LIKE %(model)s
) recent
WHERE rn <= %(rows)s ORDER BY meter_id, window_start DESC
"""
_FLAGGED_SQL = """
SELECT meter_id, window_start, window_end, (features->>'power_mean_w')::float8, score,
       threshold, is_anomaly, top_feature
FROM anomaly_scores WHERE model_id LIKE %(model)s AND is_anomaly
ORDER BY window_start DESC LIMIT %(rows)s
"""


class ScoresReader:
    """This run's rows of ``anomaly_scores``, over one connection kept open between frames."""

    def __init__(self, settings: Settings, plan: DemoPlan) -> None:
        self._settings = settings
        self._model = plan.model_pattern
        self._conn: Any = None
        # Driver messages can echo connection details; the note goes to the screen.
        self._redact = RedactSecrets(settings.secrets()).redact

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                **self._settings.postgres.connect_kwargs(), autocommit=True, connect_timeout=3
            )
        return self._conn

    def read(
        self, snapshot: Snapshot, rows_per_meter: int, flagged: int, sim_end: datetime
    ) -> None:
        """Fill the score parts of ``snapshot``; a note says why when the table cannot be read."""
        import psycopg

        params = {"model": self._model, "rows": rows_per_meter}
        try:
            conn = self._connection()
            stats = conn.execute(_STATS_SQL, params).fetchall()
            recent = conn.execute(_RECENT_SQL, params).fetchall() if rows_per_meter else []
            flags = conn.execute(_FLAGGED_SQL, {**params, "rows": flagged}).fetchall()
        except psycopg.errors.UndefinedTable:
            snapshot.note = "waiting for the scores sink to create its tables"
            return
        except psycopg.Error as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            snapshot.note = self._redact(f"PostgreSQL: {first_line}")
            self.close()
            return
        snapshot.windows = sum(int(row[1]) for row in stats)
        snapshot.anomalies = sum(int(row[2]) for row in stats)
        snapshot.meters_done = sum(1 for row in stats if row[3] >= sim_end)
        ends = [row[3] for row in stats]
        snapshot.scored_until = min(ends) if ends else None
        snapshot.recent = {}
        for row in recent:
            snapshot.recent.setdefault(row[0], []).append(_window(row, snapshot.labels))
        snapshot.flagged = [_window(row, snapshot.labels) for row in flags]

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


def _window(row: tuple[Any, ...], labels: list[Label]) -> WindowRow:
    meter_id, start, end, power, score, threshold, is_anomaly, top = row
    return WindowRow(
        meter_id,
        start,
        end,
        None if power is None else float(power),
        float(score),
        None if threshold is None else float(threshold),
        bool(is_anomaly),
        top,
        label_of(labels, meter_id, start, end),
    )


class LakeProgress:
    """Whether the lake sink has committed the readings topic up to a given end."""

    def __init__(self, settings: Settings, plan: DemoPlan) -> None:
        from confluent_kafka import Consumer

        self._topic = settings.kafka.topic_prefix + READINGS
        self._partitions = settings.kafka.partitions
        # Never subscribed: it only reads the group's committed offsets and the watermarks.
        self._consumer = Consumer(
            {
                **settings.kafka.client_config(),
                "group.id": plan.lake_group,
                "enable.auto.commit": False,
                "logger": logging.getLogger("librdkafka"),
            }
        )

    def _partition_list(self) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(self._topic, p) for p in range(self._partitions)]

    def ends(self) -> dict[int, int]:
        """The readings topic's end offset per partition, now."""
        ends = {}
        for tp in self._partition_list():
            _low, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            ends[int(tp.partition)] = int(high)
        return ends

    def caught_up(self, ends: dict[int, int]) -> bool:
        committed = self._consumer.committed(self._partition_list(), timeout=10)
        done = {int(tp.partition): int(tp.offset) for tp in committed}
        return all(done.get(p, -1) >= end for p, end in ends.items() if end > 0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._consumer.close()


class Completion:
    """Decides when everything the connector published was scored and written."""

    def __init__(self, plan: DemoPlan, lake: LakeProgress) -> None:
        self._homes = plan.options.homes
        self._lake = lake
        self._ends: dict[int, int] | None = None
        self._lake_done = False
        self._next_check = 0.0
        self._last_windows = -1
        self._last_change = time.monotonic()
        self._finished = False  # the connector ended by itself (not stopped by the demo)
        self.done = False
        self.complete = True

    def connector_finished(self) -> None:
        """Remember where the readings topic ends now that nothing more will be published."""
        self._finished = True
        try:
            self._ends = self._lake.ends()
        except Exception as exc:  # retried on the next check
            log.warning("cannot read the readings topic's end offsets: %s", exc)
        self._last_change = time.monotonic()

    def update(self, snapshot: Snapshot) -> bool:
        now = time.monotonic()
        if snapshot.windows != self._last_windows:
            self._last_windows, self._last_change = snapshot.windows, now
        if self.done or not self._finished or now < self._next_check:
            return self.done
        self._next_check = now + _DONE_CHECK_EVERY_S
        if self._ends is None:
            self.connector_finished()
            if self._ends is None:
                return False
        if not self._lake_done:
            try:
                self._lake_done = self._lake.caught_up(self._ends)
            except Exception as exc:
                log.warning("cannot read the lake sink's committed offsets: %s", exc)
                return False
        scores_done = snapshot.meters_done >= self._homes
        quiet = now - self._last_change >= QUIET_S
        if self._lake_done and (scores_done or quiet):
            self.done = True
            self.complete = scores_done
        return self.done


class Observer:
    """Builds one :class:`Snapshot` per frame from the stores, the metrics and the labels."""

    def __init__(
        self, settings: Settings, plan: DemoPlan, connector_port: int, lake_port: int
    ) -> None:
        self._plan = plan
        self._connector_port = connector_port
        self._lake_port = lake_port
        self._scores = ScoresReader(settings, plan)
        self._lake = LakeProgress(settings, plan)
        self.completion = Completion(plan, self._lake)
        self._published: int | None = None
        self._lake_counts: tuple[int, int] | None = None

    def connector_finished(self, log_path: Path) -> None:
        self.read_published(log_path)
        self.completion.connector_finished()

    def read_published(self, log_path: Path) -> None:
        """Take the connector's own final count once it has written it (on any clean exit)."""
        self._published = published_from_log(log_path) or self._published

    def snapshot(
        self,
        *,
        elapsed_s: float,
        children: list[tuple[str, str]],
        connector_running: bool,
        rows_per_meter: int,
        flagged: int,
    ) -> Snapshot:
        snapshot = Snapshot(elapsed_s=elapsed_s, children=children)
        snapshot.labels = read_label_file(self._plan.labels_file)
        self._scores.read(snapshot, rows_per_meter, flagged, self._plan.sim_end)
        if connector_running:
            published = scrape(self._connector_port).get("meterstream_connector_readings_published")
            if published is not None:
                self._published = int(published)
        lake = scrape(self._lake_port)
        if lake:
            self._lake_counts = (
                int(lake.get("meterstream_sink_files_uploaded", 0)),
                int(lake.get("meterstream_sink_rows_written", 0)),
            )
        snapshot.readings_published = self._published
        if self._lake_counts is not None:
            snapshot.lake_files, snapshot.lake_rows = self._lake_counts
        if not connector_running:
            snapshot.done = self.completion.update(snapshot)
            snapshot.complete = self.completion.complete
        return snapshot

    def close(self) -> None:
        self._scores.close()
        self._lake.close()
