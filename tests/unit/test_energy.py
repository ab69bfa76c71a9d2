"""The energy rule: step-hold with a capped hold, window-local, additive; same result in DuckDB."""

from __future__ import annotations

import re
from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core import energy
from streams.core.energy import (
    WINDOW_ENERGY_SQL,
    daily_energy_kwh,
    energy_by_window,
    window_energy_wh,
)
from streams.core.types import ReadingPoint, WindowConfig
from streams.core.windowing import MeterWindows

S = 1_000_000
MIN = 60 * S
GAP = 30 * S
BASE = 1_767_222_000_000_000


def test_constant_power_over_a_full_window_is_power_times_size() -> None:
    ts = [BASE + 5 * S + 10 * S * i for i in range(6)]  # 5, 15, ..., 55 s
    assert window_energy_wh(ts, [1800.0] * 6, BASE, BASE + MIN, GAP) == pytest.approx(30.0)
    # a reading exactly at the start: nothing to cover backwards
    assert window_energy_wh([BASE], [3600.0], BASE, BASE + 10 * S, GAP) == pytest.approx(10.0)


def test_holds_are_capped_at_max_gap() -> None:
    # 0 s → 50 s: 30 s capped; 50 s → end: 10 s
    e = window_energy_wh([BASE, BASE + 50 * S], [360.0, 720.0], BASE, BASE + MIN, GAP)
    assert e == pytest.approx((360.0 * 30 + 720.0 * 10) / 3600)
    # the first reading's cover of [start, t0) is capped on its own: 30 s back + 15 s ahead
    e = window_energy_wh([BASE + 45 * S], [3600.0], BASE, BASE + MIN, GAP)
    assert e == pytest.approx(45.0)
    assert window_energy_wh([BASE + 45 * S], [3600.0], BASE, BASE + MIN, 0) == 0.0


def test_outside_unsorted_and_repeated_readings() -> None:
    ts = [BASE + 40 * S, BASE - S, BASE + 10 * S, BASE + 40 * S, BASE + MIN]
    power = [100.0, 9e9, 200.0, 5e5, 9e9]  # the second 40 s reading is a repeat: ignored
    expected = (200.0 * 10 + 200.0 * 30 + 100.0 * 20) / 3600
    assert window_energy_wh(ts, power, BASE, BASE + MIN, GAP) == pytest.approx(expected)
    assert window_energy_wh([], [], BASE, BASE + MIN, GAP) == 0.0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="empty window"):
        window_energy_wh([BASE], [1.0], BASE, BASE, GAP)
    with pytest.raises(ValueError, match="max_gap"):
        window_energy_wh([BASE], [1.0], BASE, BASE + MIN, -1)
    with pytest.raises(ValueError, match="powers"):
        window_energy_wh([BASE], [], BASE, BASE + MIN, GAP)
    with pytest.raises(ValueError, match="boundaries"):
        daily_energy_kwh([], [], day_start_us=1, day_end_us=MIN, size_us=MIN, max_gap_us=GAP)


readings = st.lists(
    st.tuples(st.integers(0, 3600 * S - 1), st.floats(0.0, 2e4, allow_nan=False)),
    min_size=1,
    max_size=80,
    unique_by=lambda r: r[0],
)


@given(readings=readings, cut=st.integers(1, 59))
def test_adjacent_windows_add_up_when_a_reading_sits_on_the_boundary(
    readings: list[tuple[int, float]], cut: int
) -> None:
    """Splitting [a, c) at b changes nothing if a reading is at a and at b (no hold crosses b)."""
    a, b, c = BASE, BASE + cut * MIN, BASE + 60 * MIN
    pts = sorted(({BASE + t: p for t, p in readings} | {a: 100.0, b: 250.0}).items())
    ts, power = [t for t, _ in pts], [p for _, p in pts]
    whole = window_energy_wh(ts, power, a, c, GAP)
    parts = window_energy_wh(ts, power, a, b, GAP) + window_energy_wh(ts, power, b, c, GAP)
    assert parts == pytest.approx(whole, rel=1e-12, abs=1e-9)


@given(readings=readings)
def test_daily_energy_is_the_sum_of_the_windows_the_worker_closes(
    readings: list[tuple[int, float]],
) -> None:
    cfg = WindowConfig()
    ts = [BASE + t for t, _ in readings]
    power = [p for _, p in readings]
    w = MeterWindows(cfg)
    closed = []
    for i in sorted(range(len(ts)), key=ts.__getitem__):
        closed += w.add(ReadingPoint(ts[i], power[i], ts[i] // 1000)).closed
    closed += w.flush_all()
    worker = [
        window_energy_wh(c.ts_us, c.power_w, c.start_us, c.end_us, cfg.energy_max_gap_us)
        for c in closed
    ]
    by_window = energy_by_window(ts, power, cfg.size_us, cfg.energy_max_gap_us)
    assert [c.start_us for c in closed] == list(by_window)
    assert worker == list(by_window.values())  # bit for bit: one rule, one code path
    day = daily_energy_kwh(
        ts,
        power,
        day_start_us=BASE,
        day_end_us=BASE + 24 * 3600 * S,
        size_us=cfg.size_us,
        max_gap_us=cfg.energy_max_gap_us,
    )
    assert day == sum(worker) / 1000


def test_a_whole_day_of_constant_load() -> None:
    ts = list(range(BASE, BASE + 24 * 3600 * S, 7 * S))  # every 7 s: never a capped hold
    kwh = daily_energy_kwh(
        ts,
        [250.0] * len(ts),
        day_start_us=BASE,
        day_end_us=BASE + 24 * 3600 * S,
        size_us=MIN,
        max_gap_us=GAP,
    )
    assert kwh == pytest.approx(6.0, rel=1e-12)


def _sql_in_docstring() -> str:
    doc = energy.__doc__ or ""
    block = doc.split("The same rule in SQL")[1].split("::\n", 1)[1].split("\n\nDaily kWh")[0]
    return " ".join(re.sub(r"--[^\n]*", "", block).split())


def test_docstring_sql_is_the_tested_sql() -> None:
    assert _sql_in_docstring() == " ".join(WINDOW_ENERGY_SQL.split())


def test_the_same_rule_in_duckdb() -> None:
    duckdb = pytest.importorskip("duckdb")
    rows = []
    gaps = [S, 2 * S, 7 * S, 45 * S, 3 * S, 120 * S, 2 * S, 59 * S, 1, 10 * S] * 30
    for m, meter in enumerate(("m1", "m2")):
        stamps = list(accumulate(gaps, initial=BASE + m * 13 * S))
        rows += [(meter, t, 100.0 + (i * 37 % 900), 0, 10 * i) for i, t in enumerate(stamps)]
        rows.append((meter, stamps[5], 1e9, 1, 9))  # a redelivery on another partition: loses
        rows.append((meter, stamps[8], 1e9, 0, 10**6))  # a later duplicate: loses
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE readings (meter_id VARCHAR, ts BIGINT, power_w DOUBLE, "
        "kafka_partition INTEGER, kafka_offset BIGINT)"
    )
    con.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?)", rows)
    sql = WINDOW_ENERGY_SQL.format(size_us=MIN, max_gap_us=GAP)
    got = {(m, w): e for m, w, e in con.execute(sql).fetchall()}
    expected: dict[tuple[str, int], float] = {}
    for meter in ("m1", "m2"):
        mine = sorted((r for r in rows if r[0] == meter), key=lambda r: (r[3], r[4]))
        per_window = energy_by_window([r[1] for r in mine], [r[2] for r in mine], MIN, GAP)
        expected |= {(meter, w): e for w, e in per_window.items()}
    assert got.keys() == expected.keys()
    for key, e in expected.items():
        assert got[key] == pytest.approx(e, rel=1e-12), key
    assert re.search(r"lead\(ts\) OVER w", WINDOW_ENERGY_SQL)
