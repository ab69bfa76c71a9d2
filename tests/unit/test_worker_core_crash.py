"""The worker's core after a crash: an older state with newer (or missing) snapshots.

State and snapshots are in two tables with two changelog topics, and Kafka orders nothing across
topics: after a crash the restored state can be from an older flush than the snapshots, or the
snapshots written since the last flush can be lost. Either way the restarted core, replaying the
records after the state's applied offset, must give the scores an uninterrupted run gives.
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


def _core() -> WorkerCore:
    return worker_core(
        SETTINGS,
        partitions=1,
        readings=READINGS,
        scores=AvroCodec.for_schema("AnomalyScore"),
        metrics=WorkerMetrics(),
    )


def _apply(
    core: WorkerCore,
    state: dict[bytes, bytes],
    snapshots: dict[bytes, bytes],
    start: int,
    end: int,
    flush_every: int | None,
) -> dict[int, bytes]:
    scores: dict[int, bytes] = {}
    for offset in range(start, end):
        value, append_ms = RECORDS[offset]
        for output in core.apply_reading(
            0, offset, value, append_ms=append_ms, state=state, snapshots=snapshots, topic="t"
        ):
            scores[output.window_start_us] = output.payload
        if flush_every and offset % flush_every == 0:
            core.flush_partition(0, state)
    return scores


def _uninterrupted() -> dict[int, bytes]:
    core, state, snapshots = _core(), {}, {}
    core.open_partition(0, state)
    return _apply(core, state, snapshots, 0, len(RECORDS), flush_every=50)


@pytest.mark.parametrize("snapshots_after_the_flush", ["arrived", "lost"])
def test_a_restart_from_an_older_state_gives_the_same_scores(
    snapshots_after_the_flush: str,
) -> None:
    reference = _uninterrupted()
    core, state, snapshots = _core(), {}, {}
    core.open_partition(0, state)
    _apply(core, state, snapshots, 0, 700, flush_every=50)
    core.flush_partition(0, state)
    durable_state, snapshots_at_flush = dict(state), dict(snapshots)
    # 1,000 records (about 160 windows, 40 snapshot intervals) without a flush, then a crash.
    _apply(core, state, snapshots, 700, 1700, flush_every=None)

    restarted = _core()
    restored_snapshots = dict(
        snapshots if snapshots_after_the_flush == "arrived" else snapshots_at_flush
    )
    resent = restarted.open_partition(0, durable_state)
    applied = restarted.applied(0)
    assert applied == 699
    scores = {o.window_start_us: o.payload for o in resent}
    scores.update(
        _apply(
            restarted, durable_state, restored_snapshots, applied + 1, len(RECORDS), flush_every=50
        )
    )
    assert restarted.metrics.model_resets.labels("no_snapshot")._value.get() == 0
    different = [start for start, payload in scores.items() if reference[start] != payload]
    assert not different, f"{len(different)} windows scored differently after the restart"
    assert set(reference) - set(scores) <= {s for s in reference if s < min(scores)}


def test_a_meter_takes_at_most_one_snapshot_between_two_flushes() -> None:
    core, state, snapshots = _core(), {}, {}
    core.open_partition(0, state)
    _apply(core, state, snapshots, 0, 1000, flush_every=None)  # ~160 windows, no flush
    assert core.metrics.snapshots._value.get() == 1
    core.flush_partition(0, state)
    _apply(core, state, snapshots, 1000, 1100, flush_every=None)
    assert core.metrics.snapshots._value.get() == 2  # the due one, at the next window close


def test_a_replay_asks_for_a_flush_before_the_history_grows() -> None:
    """Windows closing faster than the flush interval: the core asks for an early flush as soon
    as a snapshot has to wait, so a meter's history stays small (well under a Kafka record)."""
    core, state, snapshots = _core(), {}, {}
    core.open_partition(0, state)
    biggest = 0
    for offset in range(len(RECORDS)):
        value, append_ms = RECORDS[offset]
        core.apply_reading(
            0, offset, value, append_ms=append_ms, state=state, snapshots=snapshots, topic="t"
        )
        if core.flush_wanted(0):  # what the agent does, besides its timer
            core.flush_partition(0, state)
            biggest = max(biggest, *(len(v) for v in state.values()))
    assert core.metrics.snapshots._value.get() >= 359 // SETTINGS.snapshot_every - 2
    assert 0 < biggest < 64 * 1024
