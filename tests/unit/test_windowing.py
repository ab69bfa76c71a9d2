"""MeterWindows: closing by watermark, late and duplicate readings, idle ticks, state bytes."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from streams.core.types import ReadingPoint, WindowConfig
from streams.core.windowing import MeterWindows, WindowStateError

S = 1_000_000
MIN = 60 * S
BASE = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00, a window boundary
CFG = WindowConfig(size_us=MIN, lateness_us=10 * S, idle_timeout_us=30 * S)


def rp(
    sec: float, power: float = 100.0, append_ms: int | None = None, offset: int = -1, **kw: Any
) -> ReadingPoint:
    ts = BASE + round(sec * S)
    return ReadingPoint(
        ts_us=ts,
        power_w=power,
        append_ms=ts // 1000 if append_ms is None else append_ms,
        offset=offset,
        **kw,
    )


def secs(ts: tuple[int, ...]) -> list[float]:
    return [(t - BASE) / S for t in ts]


def test_watermark_closes_window_at_end_plus_lateness() -> None:
    w = MeterWindows(CFG)
    assert w.watermark_us is None
    assert w.last_append_ms is None
    assert not w.open_window_starts
    for i, sec in enumerate((1, 30, 59, 61, 69.999999)):
        r = w.add(rp(sec, power=sec, offset=i))
        assert r.outcome == "accepted"
        assert r.closed == []
    assert w.open_window_starts == (BASE, BASE + MIN)
    r = w.add(rp(70, offset=7))  # watermark reaches 60 s + 10 s
    assert r.outcome == "accepted"
    [closed] = r.closed
    assert (closed.start_us, closed.end_us) == (BASE, BASE + MIN)
    assert secs(closed.ts_us) == [1, 30, 59]
    assert closed.power_w == (1.0, 30.0, 59.0)
    assert closed.closed_by_offset == 7
    assert closed.closed_by == "watermark"
    assert w.closed_up_to_us == BASE + MIN
    assert w.watermark_us == BASE + 70 * S


def test_out_of_order_within_lateness_joins_its_window() -> None:
    w = MeterWindows(CFG)
    for sec in (10, 65, 55, 58, 69):  # 55 and 58 arrive after the next window opened
        assert w.add(rp(sec)).outcome == "accepted"
    [closed] = w.add(rp(75)).closed
    assert secs(closed.ts_us) == [10, 55, 58]


def test_late_reading_is_dropped_not_merged() -> None:
    w = MeterWindows(CFG)
    w.add(rp(10))
    assert len(w.add(rp(71)).closed) == 1
    before = w.to_bytes()
    r = w.add(rp(59.5, append_ms=(BASE + 71 * S) // 1000))
    assert r.outcome == "late"
    assert r.closed == []
    assert w.to_bytes() == before  # same append time: nothing changed at all
    assert w.add(rp(60)).outcome == "accepted"  # the next window is still open


def test_empty_windows_count_as_closed() -> None:
    w = MeterWindows(CFG)
    w.add(rp(10))
    r = w.add(rp(200))  # jumps over the empty windows [60, 120) and [120, 180)
    assert [c.start_us for c in r.closed] == [BASE]
    assert w.closed_up_to_us == BASE + 180 * S
    assert w.add(rp(150)).outcome == "late"  # 50 s behind the watermark: its window is closed
    assert w.add(rp(185)).outcome == "accepted"


def test_duplicate_ts_keeps_the_first_arrival() -> None:
    w = MeterWindows(CFG)
    assert w.add(rp(20, power=1.0)).outcome == "accepted"
    assert w.add(rp(30, power=2.0)).outcome == "accepted"
    assert w.add(rp(20, power=9.0)).outcome == "duplicate"  # out of order: found by bisect
    assert w.add(rp(30, power=9.0)).outcome == "duplicate"  # the newest: found at the tail
    [closed] = w.flush_all()
    assert closed.power_w == (1.0, 2.0)


def test_phase_aggregates_ignore_missing_and_non_finite_values() -> None:
    w = MeterWindows(CFG)
    w.add(rp(1, voltage_v=(230.1, None, 229.0), current_a=(5.0, None, math.nan)))
    w.add(rp(2, voltage_v=(229.9, math.inf, 231.0), current_a=(7.5, 1.0, None)))
    w.add(rp(3))
    [c] = w.flush_all()
    assert c.voltage_sum_v == (460.0, 0.0, 460.0)
    assert c.voltage_count == (2, 0, 2)
    assert c.current_max_a == (7.5, 1.0, None)
    assert c.closed_by == "flush"
    assert c.closed_by_offset == -1


def test_idle_tick_closes_only_what_the_silence_covers() -> None:
    w = MeterWindows(CFG)
    w.add(rp(50, offset=1))
    w.add(rp(62, offset=2))  # watermark 62 s: [0, 60) needs 70 s
    last = w.last_append_ms
    assert last == (BASE + 62 * S) // 1000
    assert w.on_tick(last + 29_999, 10) == []  # not idle yet
    # idle: event time estimated at 62 + 30 = 92 s, so [0, 60) closes, [60, 120) stays open
    [closed] = w.on_tick(last + 30_000, 11)
    assert secs(closed.ts_us) == [50]
    assert closed.closed_by == "idle"
    assert w.open_window_starts == (BASE + MIN,)
    assert w.closed_up_to_us == BASE + MIN
    assert w.watermark_us == BASE + 62 * S  # the watermark stays the meter's own event time
    assert w.add(rp(55, append_ms=last + 30_001)).outcome == "late"
    assert w.idle_close_due_ms == last + 30_001 + 68_000  # 120 + 10 - 62 s after the straggler


def test_idle_tick_exact_due_time() -> None:
    w = MeterWindows(CFG)
    w.add(rp(10, offset=1))
    w.add(rp(25, offset=2))
    due = w.idle_close_due_ms
    # estimate must reach 60 + 10 s: 45 s after the reading at 25 s (more than the 30 s timeout)
    assert due == (BASE + 25 * S) // 1000 + 45_000
    before = w.to_bytes()
    assert due is not None
    assert w.on_tick(due - 1, 8) == []
    assert w.to_bytes() == before  # a tick that closes nothing writes nothing
    [closed] = w.on_tick(due, 9)
    assert closed.closed_by == "idle"
    assert closed.closed_by_offset == 9
    assert secs(closed.ts_us) == [10, 25]
    assert w.open_window_starts == ()
    assert w.idle_close_due_ms is None
    assert w.on_tick(due + 600_000, 10) == []  # nothing open: ticks are free
    # A straggler for the idle-closed window is late; a reading after the silence is not.
    assert w.add(rp(50, append_ms=due + 1)).outcome == "late"
    assert w.add(rp(75, append_ms=due + 2)).outcome == "accepted"


def test_idle_timeout_dominates_when_the_window_is_nearly_over() -> None:
    w = MeterWindows(CFG)
    w.add(rp(59))
    assert w.idle_close_due_ms == (BASE + 59 * S) // 1000 + 30_000  # not 11 s: the idle timeout


def test_backlog_never_looks_idle() -> None:
    """Old readings consumed at full speed: ticks in the log sit right after their readings."""
    w, plain = MeterWindows(CFG), MeterWindows(CFG)
    append = 1_900_000_000_000  # the backlog was appended long after its event time
    out, expected = [], []
    for i in range(600):  # 20 minutes of readings every 2 s, appended 10 ms apart
        point = rp(2 * i, power=float(i), append_ms=append + 10 * i, offset=i)
        out += w.add(point).closed
        expected += plain.add(point).closed
        if i % 5 == 0:
            out += w.on_tick(append + 10 * i + 5, 10_000 + i)
    assert [c.closed_by for c in out] == ["watermark"] * len(out)
    assert [(c.start_us, c.ts_us) for c in out] == [(c.start_us, c.ts_us) for c in expected]


def test_tick_before_any_reading_and_negative_silence_are_no_ops() -> None:
    w = MeterWindows(CFG)
    assert w.on_tick(10**12, 1) == []
    assert w == MeterWindows(CFG)
    w.add(rp(5, append_ms=10**12))
    assert w.on_tick(10**12 - 60_000, 2) == []


def test_flush_all_closes_everything_and_later_readings_are_late() -> None:
    w = MeterWindows(CFG)
    for sec in (5, 62, 65):
        w.add(rp(sec))
    assert [c.start_us for c in w.flush_all()] == [BASE, BASE + MIN]
    assert w.flush_all() == []
    assert w.add(rp(100)).outcome == "late"
    assert w.add(rp(120)).outcome == "accepted"


def test_windows_are_aligned_to_the_epoch_even_before_it() -> None:
    w = MeterWindows(CFG)
    w.add(ReadingPoint(ts_us=-1, power_w=1.0, append_ms=0))
    assert w.open_window_starts == (-MIN,)


def test_state_round_trip_and_size_at_one_second_cadence() -> None:
    w = MeterWindows(CFG)
    for i in range(130):  # 1 s cadence, 3 phases: [60, 120) full and [120, 130) open
        w.add(
            rp(
                60 + i,
                power=1000.0 + i / 7,
                voltage_v=(230.1, 229.7, 231.3),
                current_a=(4.2, 1.1, 0.3),
            )
        )
    assert len(w.open_window_starts) == 2
    data = w.to_bytes()
    assert len(data) < 2048  # "a few KB at most"
    restored = MeterWindows.from_bytes(data, CFG)
    assert restored == w
    assert restored.to_bytes() == data
    assert repr(restored) == repr(w)
    assert restored.idle_close_due_ms == w.idle_close_due_ms


def test_wide_windows_round_trip() -> None:
    cfg = WindowConfig(size_us=2 * 3600 * S, lateness_us=0)  # offsets no longer fit in u32
    w = MeterWindows(cfg)
    w.add(rp(7000))
    w.add(rp(5000))
    assert MeterWindows.from_bytes(w.to_bytes(), cfg) == w


def test_from_bytes_refuses_bad_state() -> None:
    w = MeterWindows(CFG)
    w.add(rp(5, current_a=(1.0, None, None)))
    data = w.to_bytes()
    with pytest.raises(WindowStateError, match="size_us"):
        MeterWindows.from_bytes(data, WindowConfig(size_us=30 * S))
    with pytest.raises(WindowStateError, match="version"):
        MeterWindows.from_bytes(b"\x09" + data[1:], CFG)
    with pytest.raises(WindowStateError, match="corrupt"):
        MeterWindows.from_bytes(data[:-3], CFG)
    with pytest.raises(WindowStateError, match="trailing"):
        MeterWindows.from_bytes(data + b"\0", CFG)
    with pytest.raises(ValueError, match="corrupt"):  # WindowStateError is a ValueError
        MeterWindows.from_bytes(b"", CFG)
    assert struct.unpack_from("<B", data)[0] == 1


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid window config"):
        MeterWindows(WindowConfig(size_us=0))
