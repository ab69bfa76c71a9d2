"""The worker's core after a crash: an older state with newer (or missing) snapshots.

State and snapshots are in two tables with two changelog topics, and Kafka orders nothing across
topics: after a crash the restored state is the last one Kafka acknowledged, which can be older
than snapshots written since, and the snapshots written since can be lost. Either way the
restarted core, replaying the records after the restored state's applied offset, must give the
scores an uninterrupted run gives.

A :class:`Run` stands for one worker: it flushes every ``flush_every`` records, and Kafka
acknowledges a flush only at the next one (so at any moment the last flush may be lost).
"""

from __future__ import annotations

import pytest

from connector.simulator.household import HouseholdSimulator
from meterstream.settings import WorkerSettings
from schemas.codec import AvroCodec
from streams.config import worker_core
from streams.metrics import WorkerMetrics
from streams.processor import WorkerCore

START_US = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z
READINGS = AvroCodec.for_schema("Reading")
# Small and quick; snapshots every 4 windows, so a stretch without flushes spans many of them.
SETTINGS = WorkerSettings(snapshot_every=4, warmup=8, threshold_warmup=4, trees=8, sample_size=16)


def _records() -> list[tuple[bytes, int]]:
    sim = HouseholdSimulator(1, start_us=START_US, interval_s=10.0, seed=11)
    out: list[tuple[bytes, int]] = []
    while len(out) < 6 * 360:  # 6 hours at 10 s: 359 windows
        out.extend(
            (READINGS.encode(r), r["received_at"] // 1000)
            for r in sim.next_batch(sim.default_batch_steps)
        )
    return out


RECORDS = _records()


class Run:
    """One worker's core, its tables, and what Kafka has acknowledged of its state."""

    def __init__(
        self,
        state: dict[bytes, bytes] | None = None,
        snapshots: dict | None = None,
        *,
        acknowledge_at_once: bool = False,
    ):
        self.acknowledge_at_once = acknowledge_at_once
        self.core: WorkerCore = worker_core(
            SETTINGS,
            partitions=1,
            readings=READINGS,
            scores=AvroCodec.for_schema("AnomalyScore"),
            metrics=WorkerMetrics(),
        )
        self.state: dict[bytes, bytes] = dict(state or {})
        self.snapshots: dict[bytes, bytes] = dict(snapshots or {})
        self.acknowledged_state = dict(self.state)  # what a crash now would restore
        self.acknowledged_snapshots = dict(self.snapshots)
        self._written_state: dict[bytes, bytes] | None = None
        self._written_snapshots: dict[bytes, bytes] | None = None
        self.scores = {
            o.window_start_us: o.payload for o in self.core.open_partition(0, self.state)
        }

    def flush(self) -> None:
        if self._written_state is not None:  # Kafka acknowledges the previous flush now
            self.acknowledged_state = self._written_state
            self.acknowledged_snapshots = self._written_snapshots or {}
            self.core.acknowledged(0)
        self.core.flush_partition(0, self.state)
        self._written_state, self._written_snapshots = dict(self.state), dict(self.snapshots)
        if self.acknowledge_at_once:
            self.acknowledged_state = self._written_state
            self.acknowledged_snapshots = self._written_snapshots
            self.core.acknowledged(0)

    def apply(self, start: int, end: int, flush_every: int | None = 50) -> None:
        for offset in range(start, end):
            value, append_ms = RECORDS[offset]
            for output in self.core.apply_reading(
                0,
                offset,
                value,
                append_ms=append_ms,
                state=self.state,
                snapshots=self.snapshots,
                topic="t",
            ):
                self.scores[output.window_start_us] = output.payload
            if (flush_every and offset % flush_every == 0) or self.core.flush_wanted(0):
                self.flush()

    def resets(self) -> float:
        return float(self.core.metrics.model_resets.labels("no_snapshot")._value.get())


def _uninterrupted() -> dict[int, bytes]:
    run = Run()
    run.apply(0, len(RECORDS))
    return run.scores


REFERENCE = _uninterrupted()


def _restart_and_compare(state: dict[bytes, bytes], snapshots: dict[bytes, bytes]) -> Run:
    restarted = Run(state, snapshots)
    applied = restarted.core.applied(0)
    restarted.apply(0 if applied is None else applied + 1, len(RECORDS))
    assert restarted.resets() == 0, "a meter found no snapshot in step with its state"
    different = [s for s, payload in restarted.scores.items() if REFERENCE[s] != payload]
    assert not different, f"{len(different)} windows scored differently after the restart"
    return restarted


@pytest.mark.parametrize("snapshots_after_the_ack", ["arrived", "lost"])
@pytest.mark.parametrize("crash_at", [333, 700, 1234, 1700])
def test_a_crash_restores_the_acknowledged_state_and_gives_the_same_scores(
    crash_at: int, snapshots_after_the_ack: str
) -> None:
    run = Run()
    run.apply(0, crash_at)
    snapshots = (
        run.snapshots if snapshots_after_the_ack == "arrived" else run.acknowledged_snapshots
    )
    _restart_and_compare(run.acknowledged_state, snapshots)


def test_a_long_stretch_without_acknowledgement_takes_no_snapshot_a_crash_would_need() -> None:
    """The reviewer's case: a flush written but not acknowledged, then many windows: a second
    snapshot would drop the one the acknowledged state needs."""
    run = Run()
    run.apply(0, 700)
    run.flush()  # written, never acknowledged
    run.apply(700, 1700, flush_every=None)  # ~160 windows; the core asks for flushes it cannot get
    _restart_and_compare(run.acknowledged_state, run.snapshots)


def test_a_restart_twice_in_a_row_gives_the_same_scores() -> None:
    """The state restored after a crash is behind a snapshot taken before it; replaying past
    that snapshot must not take one the restored state would then miss."""
    run = Run()
    run.apply(0, 1000)
    first = Run(run.acknowledged_state, run.snapshots)
    applied = first.core.applied(0)
    assert applied is not None
    first.apply(applied + 1, applied + 300)  # crash again, mid-replay
    _restart_and_compare(first.acknowledged_state, first.snapshots)


def test_a_replay_keeps_every_state_value_small() -> None:
    """Windows closing faster than the flush interval: the core asks for an early flush as soon
    as a snapshot has to wait, so a meter's history stays small (well under a Kafka record)."""
    run = Run(acknowledge_at_once=True)
    biggest = 0
    for offset in range(len(RECORDS)):
        run.apply(offset, offset + 1, flush_every=None)
        biggest = max(biggest, *(len(v) for v in run.state.values()), 0)
    assert run.core.metrics.snapshots._value.get() >= 359 // SETTINGS.snapshot_every - 4
    assert 0 < biggest < 64 * 1024
