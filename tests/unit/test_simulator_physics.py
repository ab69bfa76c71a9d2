"""Simulated readings behave like a real meter's: electrics, counters, DST, daily rhythm."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from connector.simulator import AnomalyConfig, HouseholdSimulator
from connector.simulator.localtime import LocalDay

OSLO = ZoneInfo("Europe/Oslo")
MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEW_YEAR_OSLO = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00
PHASES = ("l1", "l2", "l3")


def run(sim: HouseholdSimulator, end_us: int) -> list[dict[str, Any]]:
    return [dict(r) for batch in sim.batches(end_us=end_us) for r in batch]


def by_meter(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    meters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        meters[record["meter_id"]].append(record)
    return meters


def local_hour(ts_us: int) -> int:
    return datetime.fromtimestamp(ts_us / 1e6, OSLO).hour


@pytest.fixture(scope="module")
def hour_of_readings() -> tuple[HouseholdSimulator, list[dict[str, Any]]]:
    sim = HouseholdSimulator(12, start_us=NEW_YEAR_OSLO + 18 * HOUR, seed=11)
    return sim, run(sim, sim.start_us + HOUR)


def test_voltage_times_current_matches_power_per_phase(hour_of_readings: Any) -> None:
    _, records = hour_of_readings
    checked = 0
    for r in records:
        if r["voltage_l1_v"] is None:
            continue
        apparent = sum(
            r[f"voltage_{p}_v"] * r[f"current_{p}_a"]
            for p in PHASES
            if r[f"voltage_{p}_v"] is not None
        )
        # Voltage has 0.1 V and current 0.01 A resolution: allow for that rounding.
        currents = sum(r[f"current_{p}_a"] or 0.0 for p in PHASES)
        assert abs(apparent - r["power_w"]) <= 0.005 * 250 * 3 + 0.05 * currents + 1e-6
        checked += 1
    assert checked > len(records) // 10


def test_null_pattern_follows_each_meters_wiring(hour_of_readings: Any) -> None:
    sim, records = hour_of_readings
    series = by_meter(records)
    assert {t.phases for t in sim.traits} == {1, 3}
    assert {t.voltage_every_frame for t in sim.traits} == {True, False}
    for traits in sim.traits:
        for r in series[traits.meter_id]:
            expected = traits.voltage_every_frame or (r["ts"] // 1_000_000) % 10 == 0
            for field in ("voltage_l1_v", "current_l1_a"):
                assert (r[field] is not None) == expected
            for field in ("voltage_l2_v", "voltage_l3_v", "current_l2_a", "current_l3_a"):
                assert (r[field] is not None) == (expected and traits.phases == 3)
            assert r["power_production_w"] is None
            assert r["accumulated_cost"] is None
            assert r["currency"] is None
            assert r["power_factor"] is None
    signals = [r["signal_strength"] for r in records if r["signal_strength"] is not None]
    assert 0 < len(signals) < len(records) // 10
    assert all(isinstance(s, int) and -100 < s < 0 for s in signals)


def step_hold_check(series: list[dict[str, Any]], day: LocalDay) -> None:
    """Counters against an independent step-hold integral of the reported powers."""
    ts = [r["ts"] for r in series]
    power = [r["power_w"] for r in series]
    shifts = [int(s) for s in day.hour_starts_us]
    origin = ts[0]

    # F(t): energy since the first reading, piecewise linear through the readings.
    times = np.array(ts, dtype=np.int64)
    watts = np.array(power)
    at_reading = np.concatenate([[0.0], np.cumsum(watts[:-1] * np.diff(times) / 3.6e12)])

    def energy_until(t: int) -> float:
        j = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
        return float(at_reading[j] + watts[j] * max(t - times[j], 0) / 3.6e12)

    def energy_between(lo: int, hi: int) -> float:  # kWh from instant lo to hi
        return energy_until(hi) - energy_until(lo)

    day_readings = [i for i, t in enumerate(ts) if day.start_us <= t < day.end_us]
    for i in day_readings[:: max(1, len(day_readings) // 300)]:
        since = max(day.start_us, origin)
        assert series[i]["accumulated_consumption_kwh"] == pytest.approx(
            energy_between(since, ts[i]), abs=1e-9
        )
        shift = max(s for s in shifts if s <= ts[i])
        hour = energy_between(max(shift, origin), ts[i])
        assert series[i]["accumulated_consumption_last_hour_kwh"] == pytest.approx(hour, abs=1e-9)
        register = series[0]["last_meter_consumption_kwh"] + energy_between(origin, ts[i])
        assert series[i]["last_meter_consumption_kwh"] == pytest.approx(register, abs=1e-6)
        held = [
            power[j] for j in range(i + 1) if ts[j] >= since or (j + 1 <= i and ts[j + 1] > since)
        ]
        assert series[i]["min_power_w"] == min(held)
        assert series[i]["max_power_w"] == max(held)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_counters_on_a_dst_day_in_oslo(day: date, hours: int) -> None:
    local = LocalDay.of(OSLO, day)
    assert (local.end_us - local.start_us) == hours * HOUR
    sim = HouseholdSimulator(3, start_us=local.start_us - HOUR, interval_s=15, seed=4)
    records = run(sim, local.end_us + HOUR)
    for meter_id, series in by_meter(records).items():
        ts = [r["ts"] for r in series]
        day_counter = [r["accumulated_consumption_kwh"] for r in series]
        # Resets exactly at local midnight: the only decreases are at both midnights.
        drops = [ts[i] for i in range(1, len(ts)) if day_counter[i] < day_counter[i - 1]]
        assert drops == [local.start_us, local.end_us], meter_id
        hour_counter = [r["accumulated_consumption_last_hour_kwh"] for r in series]
        resets = [ts[i] for i in range(1, len(ts)) if hour_counter[i] < hour_counter[i - 1]]
        assert len([t for t in resets if local.start_us <= t < local.end_us]) == hours
        registers = [r["last_meter_consumption_kwh"] for r in series]
        assert all(b >= a for a, b in itertools.pairwise(registers))
        for r in series:
            assert r["min_power_w"] <= r["average_power_w"] <= r["max_power_w"]
        offsets = {r["ts_offset_minutes"] for r in series if r["ts"] < local.shift_us}
        offsets_after = {r["ts_offset_minutes"] for r in series if r["ts"] >= local.shift_us}
        assert (offsets, offsets_after) == (({60}, {120}) if hours == 23 else ({120}, {60}))
        assert local.shift_us - local.start_us == 2 * HOUR if hours == 23 else 3 * HOUR
        step_hold_check(series, local)


def test_counters_start_at_zero_mid_day_and_average_is_energy_over_time() -> None:
    sim = HouseholdSimulator(2, start_us=NEW_YEAR_OSLO + 14 * HOUR + 1_500_000, seed=2)
    series = by_meter(run(sim, sim.start_us + 2 * HOUR))["sim-0002"]
    first = series[0]
    assert first["accumulated_consumption_kwh"] == 0.0
    assert first["accumulated_consumption_last_hour_kwh"] == 0.0
    assert (
        first["min_power_w"] == first["average_power_w"] == first["max_power_w"] == first["power_w"]
    )
    last = series[-1]
    elapsed_h = (last["ts"] - first["ts"]) / HOUR
    assert last["average_power_w"] == pytest.approx(
        last["accumulated_consumption_kwh"] * 1000 / elapsed_h, abs=0.06
    )
    step_hold_check(series, LocalDay.containing(OSLO, sim.start_us))


@pytest.fixture(scope="module")
def quiet_days() -> tuple[HouseholdSimulator, list[dict[str, Any]]]:
    """Four January days of 20 households without anomalies, one reading a minute."""
    sim = HouseholdSimulator(
        20, start_us=NEW_YEAR_OSLO, interval_s=60, seed=21, anomalies=AnomalyConfig.none()
    )
    return sim, run(sim, NEW_YEAR_OSLO + 4 * DAY)


def test_nights_are_quieter_than_evenings(quiet_days: Any) -> None:
    _, records = quiet_days
    hours = np.array([local_hour(r["ts"]) for r in records])
    power = np.array([r["power_w"] for r in records])
    night = power[(hours >= 2) & (hours < 5)].mean()
    evening = power[(hours >= 18) & (hours < 21)].mean()
    assert night * 1.5 < evening


def test_daily_energy_is_household_sized(quiet_days: Any) -> None:
    sim, records = quiet_days
    series = by_meter(records)
    for traits in sim.traits:
        rows = series[traits.meter_id]
        # Energy of each full day: the counter just before midnight plus the held last minute.
        totals = [
            a["accumulated_consumption_kwh"] + a["power_w"] * 60 / 3.6e6
            for a, b in itertools.pairwise(rows)
            if b["accumulated_consumption_kwh"] < a["accumulated_consumption_kwh"]
        ]
        assert len(totals) == 3
        low, high = (5.0, 80.0) if traits.has_ev else (5.0, 40.0)
        assert all(low <= kwh <= high for kwh in totals), (traits, totals)


def test_normal_voltage_stays_near_230(quiet_days: Any) -> None:
    _, records = quiet_days
    volts = [
        r[f"voltage_{p}_v"] for r in records for p in PHASES if r[f"voltage_{p}_v"] is not None
    ]
    assert min(volts) >= 216.0
    assert max(volts) <= 250.0
    assert 228.0 <= float(np.mean(volts)) <= 236.0
