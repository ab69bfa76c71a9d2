"""The lake sink's destination: one spooled Parquet file per partition, uploaded then committed.

Per partition, records go into the open file until :class:`~sinks.lake.roller.Roller` closes
it; a closed file waits in the upload queue (on disk) and, once uploaded, its partition's offset
is committed at once, so at most one uploaded-but-uncommitted file exists per partition and its
name (first offset) is the one a re-read would give it again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from meterstream.faults import fault_point
from meterstream.settings import LakeSettings
from sinks.lake.naming import HourPartition, object_key
from sinks.lake.roller import Roller
from sinks.lake.spool import SpoolFile, spool_path
from sinks.lake.store import LakeStore
from sinks.runtime.destination import Commit
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.records import Consumed, TopicPartition

log = logging.getLogger(__name__)

# A partition that only sees ticks commits its position at most this often.
_IDLE_COMMIT_EVERY_S = 5.0


@dataclass
class ClosedFile:
    tp: TopicPartition
    spool: SpoolFile
    key: str
    commit_offset: int  # everything before it is in this or earlier files, or carries no row
    rows: int
    first_broker_us: int


@dataclass
class _Partition:
    roller: Roller
    spool: SpoolFile | None = None
    position: int = -1  # next offset after the last record seen
    committed: int = -1  # last position handed to commit (while no file is open)


class LakeDestination:
    name = "lake"

    def __init__(
        self,
        lake: LakeSettings,
        store: LakeStore,
        metrics: SinkMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lake = lake
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._spool_dir: Path = lake.spool_dir
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._closed: deque[ClosedFile] = deque()
        self._next_idle_commit = 0.0

    # -- buffering -----------------------------------------------------------------------------
    def _partition(self, tp: TopicPartition) -> _Partition:
        state = self._partitions.get(tp)
        if state is None:
            state = _Partition(
                Roller(self._lake.file_max_rows, int(self._lake.file_max_age * 1_000_000))
            )
            self._partitions[tp] = state
        return state

    def add(self, record: Consumed) -> None:
        state = self._partition(record.tp)
        value = record.value
        ts_us = None if value is None else int(value["ts"])
        if state.roller.closes_before(ts_us, record.timestamp_us):
            self._close(record.tp, state, commit_offset=record.offset)
        state.position = record.offset + 1
        if value is None or ts_us is None:
            return
        if state.roller.open is None:
            state.roller.start(HourPartition.of(ts_us), record.offset, record.timestamp_us)
            state.spool = SpoolFile(
                spool_path(self._spool_dir, record.topic, record.partition, record.offset),
                self._lake.row_group_rows,
            )
        assert state.spool is not None
        state.spool.append(value, record.partition, record.offset, record.timestamp_us)
        state.roller.append(record.offset)

    def _close(self, tp: TopicPartition, state: _Partition, commit_offset: int) -> None:
        opened = state.roller.close()
        spool, state.spool = state.spool, None
        if opened is None or spool is None:
            return
        spool.finish()
        self._closed.append(
            ClosedFile(
                tp,
                spool,
                object_key(opened.hour, tp[0], tp[1], opened.first_offset),
                commit_offset,
                opened.rows,
                opened.first_broker_us,
            )
        )

    def due(self, now: float) -> bool:
        return bool(self._closed) or now >= self._next_idle_commit

    def buffered(self) -> int:
        open_rows = sum(s.spool.rows for s in self._partitions.values() if s.spool is not None)
        return open_rows + sum(f.rows for f in self._closed)

    # -- writing -------------------------------------------------------------------------------
    def write(self, commit: Commit, *, final: bool = False) -> None:
        if final:
            for tp, state in self._partitions.items():
                if state.roller.open is not None:
                    self._close(tp, state, commit_offset=state.position)
        while self._closed:
            closed = self._closed[0]
            size = closed.spool.path.stat().st_size
            self._store.upload(closed.key, closed.spool.path)  # StoreUnavailable: kept queued
            self._closed.popleft()
            closed.spool.discard()
            self._metrics.files_uploaded.labels("lake").inc()
            self._metrics.bytes_uploaded.labels("lake").inc(size)
            self._metrics.rows_written.labels("lake", "readings").inc(closed.rows)
            self._metrics.visibility.labels("lake").observe(
                max(0.0, self._wall_clock() - closed.first_broker_us / 1e6)
            )
            log.debug("uploaded %s (%d rows)", closed.key, closed.rows)
            fault_point("after_upload_before_commit")
            if not any(c.tp == closed.tp for c in self._closed):
                owner = self._partitions.get(closed.tp)
                if owner is not None:
                    owner.committed = max(owner.committed, closed.commit_offset)
            commit({closed.tp: closed.commit_offset})
        self._commit_idle(commit)

    def _commit_idle(self, commit: Commit) -> None:
        """Partitions with no open file and nothing queued can commit past their ticks."""
        self._next_idle_commit = self._clock() + _IDLE_COMMIT_EVERY_S
        idle = {
            tp: state.position
            for tp, state in self._partitions.items()
            if state.roller.open is None
            and state.position > state.committed
            and not any(c.tp == tp for c in self._closed)
        }
        if idle:
            for tp, position in idle.items():
                self._partitions[tp].committed = position
            commit(idle)

    # -- rebalances and shutdown ---------------------------------------------------------------
    def revoke(self, partitions: Collection[TopicPartition]) -> None:
        gone = set(partitions)
        for tp in gone:
            dropped = self._partitions.pop(tp, None)
            if dropped is not None and dropped.spool is not None:
                dropped.spool.discard()
        kept: deque[ClosedFile] = deque()
        for closed in self._closed:
            if closed.tp in gone:
                closed.spool.discard()  # the next owner rebuilds it under the same name
            else:
                kept.append(closed)
        self._closed = kept

    def close(self) -> None:
        self.revoke(list(self._partitions) + [c.tp for c in self._closed])
