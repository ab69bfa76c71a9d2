"""Bytes the worker writes to its state (and so to the changelogs) per scored window.

Runs the worker's core (:class:`streams.processor.WorkerCore`, the code the Faust agent calls)
on simulator readings with in-memory tables, flushing the state as the worker does every
``--flush-every`` seconds of arrival time, and reports per window: hot-value bytes, history bytes,
snapshot bytes, and the size of one meter's state at the end. Values are uncompressed; the
changelog topics compress batches with the topic's codec (zstd) on top.

    python -m bench.state                  # 20 meters, 6 hours at 2 s, flush every 1 s
    python -m bench.state --smoke
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from connector.simulator.household import HouseholdSimulator
from meterstream.kafka.partitioner import partition_for_meter
from meterstream.settings import WorkerSettings
from schemas.codec import AvroCodec
from streams.config import worker_core
from streams.metrics import WorkerMetrics
from streams.processor import HISTORY_PREFIX

START_US = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z
PARTITIONS = 4


class CountingTable(dict[bytes, bytes]):
    """A table that adds up the bytes written to it, by kind of key."""

    def __init__(self) -> None:
        super().__init__()
        self.written: defaultdict[str, int] = defaultdict(int)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        kind = "history" if key.startswith(HISTORY_PREFIX.encode()) else "hot"
        if key.startswith(b"__applied__"):
            kind = "applied"
        self.written[kind] += len(key) + len(value)
        super().__setitem__(key, value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--flush-every", type=float, default=1.0, help="seconds of arrival time")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.meters, args.hours = 3, 0.5
    worker = WorkerSettings()
    readings = AvroCodec.for_schema("Reading")
    metrics = WorkerMetrics()
    core = worker_core(
        worker,
        partitions=PARTITIONS,
        readings=readings,
        scores=AvroCodec.for_schema("AnomalyScore"),
        metrics=metrics,
    )
    state, snapshots = CountingTable(), CountingTable()
    for partition in range(PARTITIONS):
        core.open_partition(partition, state)
    sim = HouseholdSimulator(args.meters, start_us=START_US, interval_s=2.0, seed=3)
    end_us = START_US + int(args.hours * 3_600_000_000)
    offsets = [0] * PARTITIONS
    windows = 0
    next_flush = START_US
    while sim.next_ts_us < end_us:
        for record in sim.next_batch(sim.default_batch_steps):
            partition = partition_for_meter(record["meter_id"], PARTITIONS)
            outputs = core.apply_reading(
                partition,
                offsets[partition],
                readings.encode(record),
                append_ms=record["received_at"] // 1000,
                state=state,
                snapshots=snapshots,
                topic="bench",
            )
            offsets[partition] += 1
            windows += len(outputs)
            if record["ts"] >= next_flush:
                next_flush = record["ts"] + int(args.flush_every * 1_000_000)
                for p in range(PARTITIONS):
                    core.flush_partition(p, state)
        done = (sim.next_ts_us - START_US) / (end_us - START_US)
        print(f"  {min(done, 1.0):6.1%} of the simulated time", end="\r", file=sys.stderr)
    for p in range(PARTITIONS):
        core.flush_partition(p, state)
    meter_id = (
        "meter-0000"
        if b"meter-0000" in state
        else next(iter(k for k in state if not k.startswith(b"__"))).decode()
    )
    hot = len(state[meter_id.encode()])
    history = len(state.get((HISTORY_PREFIX + meter_id).encode(), b""))
    snapshot = sum(len(v) for k, v in snapshots.items() if meter_id.encode() in k)
    per_window = {k: v / max(windows, 1) for k, v in state.written.items()}
    snap_per_window = sum(snapshots.written.values()) / max(windows, 1)
    print(
        f"state: {args.meters} meters, {args.hours:g} h at 2 s, flush every {args.flush_every:g} s: "
        f"{windows:,} windows scored\n"
        f"  written per window (uncompressed): hot {per_window.get('hot', 0):,.0f} B, "
        f"history {per_window.get('history', 0):,.0f} B, applied offsets "
        f"{per_window.get('applied', 0):,.0f} B, snapshots {snap_per_window:,.0f} B\n"
        f"  one meter at the end: hot value {hot:,} B, history {history:,} B, "
        f"snapshot {snapshot:,} B, total {hot + history + snapshot:,} B"
    )


if __name__ == "__main__":
    main()
