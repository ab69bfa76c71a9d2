"""The scores sink's destination: batches of upserts into PostgreSQL, one transaction per write.

Offsets are committed only after the transaction has committed. A connection problem is a
:class:`StoreUnavailable` (the loop pauses and retries; the batch stays); a row PostgreSQL
refuses (bad data) is written apart from its batch, and if it still fails it is logged and
counted, never retried for ever.

Writes run on one background thread, so the next batch is consumed and decoded while
PostgreSQL works on the previous one (the sink and its server backend would otherwise take
turns). At most one batch is in flight; its offsets are committed, in order, once it has
committed; if it failed, its rows go back under the newer buffer (newer deliveries still win).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from meterstream.faults import fault_point
from meterstream.settings import PostgresSettings, ScoresSinkSettings
from sinks.db.connect import connect as connect_writer
from sinks.db.errors import DbConnectError
from sinks.runtime.destination import Commit, StoreUnavailable
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.records import Consumed, TopicPartition
from sinks.scores.rows import Batch, TableSpec
from sinks.scores.writer import TableWriter

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def connect(postgres: PostgresSettings, application_name: str) -> psycopg.Connection:
    """The writer's connection (:func:`sinks.db.connect.connect`), tuned for a long-lived sink.

    Keepalives and ``tcp_user_timeout`` notice a dead server or a cut network within about half a
    minute; any failure to connect is an outage the sink waits out.
    """
    try:
        return connect_writer(
            postgres,
            application_name=application_name,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=30_000,
        )
    except DbConnectError as exc:
        raise StoreUnavailable(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class _Buffer:
    """Rows waiting for one write, with the offsets they cover."""

    batches: dict[str, Batch]
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    first_at: float | None = None  # when the oldest record arrived (monotonic)
    oldest_broker_us: int | None = None
    records: int = 0  # rows, ticks and dead letters

    def rows(self) -> int:
        return sum(len(b) for b in self.batches.values())

    def absorb_older(self, older: _Buffer) -> None:
        """Put a failed write's rows back under this (newer) buffer."""
        for topic, batch in self.batches.items():
            batch.absorb_older(older.batches[topic])
        for tp, position in older.positions.items():
            self.positions.setdefault(tp, position)
        self.first_at = min(
            (t for t in (self.first_at, older.first_at) if t is not None), default=None
        )
        self.oldest_broker_us = min(
            (t for t in (self.oldest_broker_us, older.oldest_broker_us) if t is not None),
            default=None,
        )
        self.records += older.records


@dataclass
class _InFlight:
    buffer: _Buffer
    future: Future[dict[str, tuple[int, int]]]


class ScoresDestination:
    """Upserts ``anomaly_scores`` (and ``readings``) rows in batches by size and age."""

    name = "scores"

    def __init__(
        self,
        postgres: PostgresSettings,
        sink: ScoresSinkSettings,
        tables: Mapping[str, TableSpec],
        metrics: SinkMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._postgres = postgres
        self._sink = sink
        self._tables = dict(tables)  # full topic name -> table
        self._writers = {topic: TableWriter(spec) for topic, spec in self._tables.items()}
        self._buffer = self._new_buffer()
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._conn: psycopg.Connection | None = None  # used by the writer thread only
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-writer")
        self._inflight: _InFlight | None = None
        self._recovering = False  # the last write failed: write synchronously until one succeeds

    def _new_buffer(self) -> _Buffer:
        return _Buffer({topic: Batch(spec.key_positions) for topic, spec in self._tables.items()})

    # -- buffering -----------------------------------------------------------------------------
    def add(self, record: Consumed) -> None:
        buffer = self._buffer
        buffer.positions[record.tp] = record.offset + 1
        if buffer.first_at is None:
            buffer.first_at = self._clock()
            buffer.oldest_broker_us = record.timestamp_us
        buffer.records += 1
        if record.value is None:
            return
        spec = self._tables[record.topic]
        row = spec.to_row(record.value, record.partition, record.offset)
        buffer.batches[record.topic].add(row, record.value[spec.time_column])

    def due(self, now: float) -> bool:
        if self._inflight is not None and self._inflight.future.done():
            return True  # its offsets wait to be committed
        first_at = self._buffer.first_at
        if first_at is None:
            return False
        return (
            self._buffer.records >= self._sink.batch_rows
            or now - first_at >= self._sink.batch_max_age
        )

    def buffered(self) -> int:
        inflight = self._inflight.buffer.rows() if self._inflight is not None else 0
        return self._buffer.rows() + inflight

    def revoke(self, partitions: Collection[TopicPartition]) -> None:
        self._settle_for_revoke()
        for topic, batch in self._buffer.batches.items():
            gone = {p for t, p in partitions if t == topic}
            if gone:
                batch.drop_partitions(self._tables[topic].partition_position, gone)
        for tp in partitions:
            self._buffer.positions.pop(tp, None)
        if not self._buffer.positions:
            self._buffer = self._new_buffer()

    def _settle_for_revoke(self) -> None:
        """Wait for the write in flight; its rows are durable or back in the buffer."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        try:
            self._account(inflight.future.result(), inflight.buffer)
        except StoreUnavailable:
            self._buffer.absorb_older(inflight.buffer)
        # Not committed: the partitions' next owner reads these records again (idempotent).

    # -- writing -------------------------------------------------------------------------------
    def write(self, commit: Commit, *, final: bool = False) -> None:
        """Hand the buffer to the writer thread; commit the previous write once it is done."""
        # After a failed write the next one is waited for, so the loop only resumes (and resets
        # its backoff) once PostgreSQL really took a batch again.
        synchronous = final or self._recovering
        self._collect(commit, wait=synchronous or self._buffer.records >= 2 * self._sink.batch_rows)
        if self._buffer.positions and self._inflight is None:
            ready = synchronous or self.due(self._clock())
            if ready:
                buffer, self._buffer = self._buffer, self._new_buffer()
                self._inflight = _InFlight(buffer, self._executor.submit(self._write, buffer))
        if synchronous:
            self._collect(commit, wait=True)

    def _collect(self, commit: Commit, *, wait: bool) -> None:
        inflight = self._inflight
        if inflight is None or not (wait or inflight.future.done()):
            return
        self._inflight = None
        try:
            results = inflight.future.result()
        except StoreUnavailable:
            self._buffer.absorb_older(inflight.buffer)
            self._recovering = True
            raise
        self._recovering = False
        self._account(results, inflight.buffer)
        commit(inflight.buffer.positions)

    def _write(self, buffer: _Buffer) -> dict[str, tuple[int, int]]:
        """One transaction for every table (on the writer thread)."""
        conn = self._connection()
        results: dict[str, tuple[int, int]] = {}
        try:
            with conn.transaction():
                for topic, writer in self._writers.items():
                    result = writer.upsert(conn, buffer.batches[topic])
                    results[writer.spec.table] = (result.rows, result.changed)
                    fault_point("mid_batch")
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise StoreUnavailable(f"PostgreSQL write failed: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            log.warning("scores sink: batch refused (%s); writing its rows one by one", exc)
            results = self._write_row_by_row(conn, buffer)
        self._refresh_old_ranges(conn, buffer)
        return results

    def _write_row_by_row(
        self, conn: psycopg.Connection, buffer: _Buffer
    ) -> dict[str, tuple[int, int]]:
        results: dict[str, tuple[int, int]] = {}
        try:
            with conn.transaction():
                for topic, writer in self._writers.items():
                    spec = writer.spec
                    written = changed = 0
                    for row in list(buffer.batches[topic].rows()):
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

    def _account(self, results: Mapping[str, tuple[int, int]], buffer: _Buffer) -> None:
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
        if buffer.oldest_broker_us is not None:
            age = self._wall_clock() - buffer.oldest_broker_us / 1e6
            self._metrics.visibility.labels("scores").observe(max(0.0, age))

    def _refresh_old_ranges(self, conn: psycopg.Connection, buffer: _Buffer) -> None:
        """Refresh the hourly aggregates over replayed history the refresh policy won't see.

        On TimescaleDB a replay of last year lands outside the continuous aggregates' refresh
        window; refreshing the batch's range here makes it visible at once (a no-op on plain
        PostgreSQL, where the aggregates are views).
        """
        from sinks.db.aggregates import outside_refresh_window, refresh_aggregates
        from sinks.db.errors import DbError

        starts = [b.min_time for b in buffer.batches.values() if b.min_time is not None]
        ends = [b.max_time for b in buffer.batches.values() if b.max_time is not None]
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

    # -- the connection (writer thread) --------------------------------------------------------
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
        if self._inflight is not None:
            with contextlib.suppress(Exception):  # shutdown: durable or read again next time
                self._inflight.future.result()
            self._inflight = None
        self._executor.shutdown(wait=True)
        self._drop_connection()
