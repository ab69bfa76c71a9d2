"""The lake's file rules: any crash, then a restart from the committed offset, gives each reading once.

The destination runs for real (spooled Parquet on local disk); only the object store is an
in-memory dict, because what is being checked is naming and commit order, not S3.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstream.settings import LakeSettings
from sinks.lake.destination import LakeDestination
from sinks.lake.naming import HourPartition, parse_key
from sinks.lake.roller import Roller
from sinks.lake.schema import reading_field_names
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.records import Consumed, TopicPartition

TOPIC = "meter.readings.v1"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z
MINUTE = 60_000_000


class MemoryStore:
    """Objects by key: a re-upload under the same name replaces the object, as S3 does."""

    def __init__(self) -> None:
        self.objects: dict[str, list[int]] = {}
        self.uploads = 0

    def upload(self, key: str, path: Path) -> None:
        self.objects[key] = pq.read_table(path, columns=["kafka_offset"]).column(0).to_pylist()
        self.uploads += 1


class Crash(Exception):
    pass


# A record: (is a tick, event minutes after T0, broker seconds since the previous record).
records_strategy = st.lists(
    st.tuples(st.booleans(), st.integers(0, 150), st.integers(0, 40)), min_size=1, max_size=120
)


def _stream(spec: list[tuple[bool, int, int]]) -> list[Consumed]:
    broker = T0
    out = []
    for offset, (tick, minutes, gap_s) in enumerate(spec):
        broker += gap_s * 1_000_000
        value = (
            None
            if tick
            else {  # decoded records carry every field (absent optional ones as None)
                **dict.fromkeys(reading_field_names()),
                "meter_id": "m1",
                "source": "simulator",
                "ts": T0 + minutes * MINUTE,
                "received_at": broker,
                "power_w": 100.0 + offset,
            }
        )
        out.append(Consumed(TOPIC, 0, offset, broker, value))
    return out


def _run(
    records: list[Consumed],
    store: MemoryStore,
    lake: LakeSettings,
    start: int,
    crash_at_commit: int | None,
    crash_before: bool = True,
) -> int:
    """Feed records from ``start``; returns the committed offset when it stops or crashes.

    The crash comes at the ``crash_at_commit``-th commit: just before it (uploaded, not
    committed) or just after it.
    """
    committed = start
    destination = LakeDestination(lake, store, SinkMetrics("lake"))  # type: ignore[arg-type]
    commits = 0

    def commit(offsets: Mapping[TopicPartition, int]) -> None:
        nonlocal committed, commits
        crashing = crash_at_commit is not None and commits == crash_at_commit
        commits += 1
        if crashing and crash_before:
            raise Crash
        committed = max(committed, offsets[(TOPIC, 0)])
        if crashing:
            raise Crash

    try:
        for record in records[start:]:
            destination.add(record)
            if destination.due(0.0):
                destination.write(commit)
        destination.write(commit, final=True)
    except Crash:
        pass
    destination.revoke([(TOPIC, 0)])
    return committed


@settings(max_examples=60)
@given(
    spec=records_strategy,
    crash=st.integers(0, 6),
    before=st.booleans(),
    max_rows=st.integers(1, 20),
)
def test_a_crash_around_any_commit_then_a_restart_gives_every_reading_once(
    spec: list[tuple[bool, int, int]], crash: int, before: bool, max_rows: int
) -> None:
    records = _stream(spec)
    with tempfile.TemporaryDirectory() as spool:
        lake = LakeSettings(spool_dir=Path(spool), file_max_rows=max_rows, file_max_age=120.0)
        store = MemoryStore()
        committed = _run(records, store, lake, 0, crash, before)
        _run(records, store, lake, committed, None)
    in_lake = sorted(offset for offsets in store.objects.values() for offset in offsets)
    readings = [r.offset for r in records if r.value is not None]
    assert in_lake == readings
    for key, offsets in store.objects.items():
        parsed = parse_key(key)
        assert parsed is not None
        assert parsed.first_offset == offsets[0]  # named after its first row
        assert offsets == sorted(offsets)  # one contiguous slice of the partition
        hours = {HourPartition.of(records[o].value["ts"]) for o in offsets}  # type: ignore[index]
        assert hours == {parsed.hour}


def test_a_tick_closes_an_old_file_and_a_reading_of_another_hour_starts_a_new_one() -> None:
    roller = Roller(max_rows=100, max_age_us=60_000_000)
    roller.start(HourPartition.of(T0), offset=0, broker_us=0)
    roller.append(0)
    assert not roller.closes_before(None, 59_999_999)
    assert roller.closes_before(None, 60_000_000)
    assert roller.closes_before(T0 + 60 * MINUTE, 1)  # next hour
    assert roller.closes_before(T0 - 1, 1)  # previous hour (a late reading)
    assert not roller.closes_before(T0 + 59 * MINUTE, 1)


@given(st.integers(0, 4_102_444_800_000_000))  # 1970 to 2100
def test_an_hour_partition_starts_at_its_first_microsecond(ts_us: int) -> None:
    hour = HourPartition.of(ts_us)
    assert hour.start_us <= ts_us < hour.start_us + 3_600_000_000
    assert HourPartition.of(hour.start_us) == hour
