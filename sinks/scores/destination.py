"""The scores sink's destination: batches of upserts into PostgreSQL, one transaction per write.

Offsets are committed only after the transaction has committed. A connection problem is a
:class:`StoreUnavailable` (the loop pauses and retries; the batch stays); a row PostgreSQL
refuses (bad data) is written apart from its batch, and if it still fails it is logged and
counted, never retried for ever.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta

import psycopg

from meterstream.faults import fault_point
from meterstream.settings import DbSettings, PostgresSettings, ScoresSinkSettings
from sinks.runtime.destination import Commit, StoreUnavailable
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.records import Consumed, TopicPartition
from sinks.scores.rows import Batch, TableSpec
from sinks.scores.writer import TableWriter

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def connect(postgres: PostgresSettings, application_name: str) -> psycopg.Connection:
    """A connection that notices a dead server or a cut network within about half a minute."""
    try:
        return psycopg.connect(
            **postgres.connect_kwargs(),
            application_name=application_name,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=30_000,
        )
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL unreachable: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ScoresDestination:
    """Upserts ``anomaly_scores`` (and ``readings``) rows in batches by size and age."""

    name = "scores"

    def __init__(
        self,
        postgres: PostgresSettings,
        db: DbSettings,
        sink: ScoresSinkSettings,
        tables: Mapping[str, TableSpec],
        metrics: SinkMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._postgres = postgres
        self._db = db
        self._sink = sink
        self._tables = dict(tables)  # full topic name -> table
        self._writers = {topic: TableWriter(spec) for topic, spec in self._tables.items()}
        self._batches = {topic: Batch(spec.key_positions) for topic, spec in self._tables.items()}
        self._positions: dict[TopicPartition, int] = {}
        self._first_at: float | None = None  # when the oldest unwritten record arrived
        self._oldest_broker_us: int | None = None
        self._pending = 0
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._conn: psycopg.Connection | None = None

    # -- buffering -----------------------------------------------------------------------------
    def add(self, record: Consumed) -> None:
        self._positions[record.tp] = record.offset + 1
        if self._first_at is None:
            self._first_at = self._clock()
        self._pending += 1
        if self._oldest_broker_us is None:
            self._oldest_broker_us = record.timestamp_us
        if record.value is None:
            return
        spec = self._tables[record.topic]
        row = spec.to_row(record.value, record.partition, record.offset)
        self._batches[record.topic].add(row, record.value[spec.time_column])

    def due(self, now: float) -> bool:
        if self._first_at is None:
            return False
        return (
            self._pending >= self._sink.batch_rows
            or now - self._first_at >= self._sink.batch_max_age
        )

    def buffered(self) -> int:
        return sum(len(b) for b in self._batches.values())

    def revoke(self, partitions: Collection[TopicPartition]) -> None:
        for topic, batch in self._batches.items():
            gone = {p for t, p in partitions if t == topic}
            if gone:
                batch.drop_partitions(self._tables[topic].partition_position, gone)
        for tp in partitions:
            self._positions.pop(tp, None)
        if not self._positions:
            self._reset_buffer()

    # -- writing -------------------------------------------------------------------------------
    def write(self, commit: Commit, *, final: bool = False) -> None:
        if not self._positions:
            return
        conn = self._connection()
        results: dict[str, tuple[int, int]] = {}
        try:
            with conn.transaction():
                for topic, writer in self._writers.items():
                    result = writer.upsert(conn, self._batches[topic])
                    results[writer.spec.table] = (result.rows, result.changed)
                    fault_point("mid_batch")
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise StoreUnavailable(f"PostgreSQL write failed: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            log.warning("scores sink: batch refused (%s); writing its rows one by one", exc)
            results = self._write_row_by_row(conn)
        self._account(results)
        self._refresh_old_ranges(conn)
        positions = dict(self._positions)
        self._reset_buffer()
        self._positions.clear()
        commit(positions)

    def _write_row_by_row(self, conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
        results: dict[str, tuple[int, int]] = {}
        try:
            with conn.transaction():
                for topic, writer in self._writers.items():
                    spec = writer.spec
                    written = changed = 0
                    for row in list(self._batches[topic].rows()):
                        single = Batch(spec.key_positions)
                        single.add(row, 0)
                        try:
                            with conn.transaction():  # a savepoint per row
                                result = writer.upsert(conn, single)
                        except psycopg.OperationalError:
                            raise
                        except psycopg.Error as exc:
                            self._metrics.dead_letters.labels("scores", "RejectedRow").inc()
                            log.error(
                                "scores sink: %s row %s refused by PostgreSQL and skipped: %s",
                                spec.table,
                                dict(
                                    zip(spec.key, (row[i] for i in spec.key_positions), strict=True)
                                ),
                                _first_line(exc),
                            )
                            continue
                        written += result.rows
                        changed += result.changed
                    results[spec.table] = (written, changed)
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise StoreUnavailable(f"PostgreSQL write failed: {_first_line(exc)}") from None
        return results

    def _account(self, results: Mapping[str, tuple[int, int]]) -> None:
        for table, (rows, changed) in results.items():
            self._metrics.rows_written.labels("scores", table).inc(rows)
            if changed:
                self._metrics.changed_rows.labels("scores", table).inc(changed)
                log.warning(
                    "scores sink: %d %s rows were re-delivered with different values "
                    "(upstream is not deterministic); the newer values were kept",
                    changed,
                    table,
                )
        if self._oldest_broker_us is not None:
            age = self._wall_clock() - self._oldest_broker_us / 1e6
            self._metrics.visibility.labels("scores").observe(max(0.0, age))

    def _refresh_old_ranges(self, conn: psycopg.Connection) -> None:
        """Refresh the hourly aggregates over replayed history the refresh policy won't see.

        On TimescaleDB a replay of last year lands outside the continuous aggregates' refresh
        window; refreshing the batch's range here makes it visible at once (a no-op on plain
        PostgreSQL, where the aggregates are views).
        """
        from sinks.db.aggregates import outside_refresh_window, refresh_aggregates
        from sinks.db.errors import DbError

        starts = [b.min_time for b in self._batches.values() if b.min_time is not None]
        ends = [b.max_time for b in self._batches.values() if b.max_time is not None]
        if not starts:
            return
        now = datetime.fromtimestamp(self._wall_clock(), UTC)
        start = _EPOCH + timedelta(microseconds=min(starts))
        if not outside_refresh_window(start, now):
            return
        end = _EPOCH + timedelta(microseconds=max(ends))
        try:
            refresh_aggregates(conn, start, end)
        except (psycopg.Error, DbError) as exc:  # the rows are safe; only the hourly views lag
            log.warning("scores sink: aggregate refresh failed: %s", _first_line(exc))

    def _reset_buffer(self) -> None:
        self._batches = {topic: Batch(spec.key_positions) for topic, spec in self._tables.items()}
        self._first_at = None
        self._oldest_broker_us = None
        self._pending = 0

    # -- the connection ------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = connect(self._postgres, "meterstream-sink-scores")
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop_connection()
