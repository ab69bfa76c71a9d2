"""Window features: values, fallbacks, always finite, DST-correct time of day, stable spec."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.features import (
    DEFAULT_FEATURES,
    FEATURE_STD_FLOORS,
    FeatureSpec,
    compute_features,
    vector,
)
from streams.core.types import ClosedWindow

S = 1_000_000
MIN = 60 * S
ALL = tuple(n for n in FEATURE_STD_FLOORS if not n.startswith("tod_"))


def window(start: int = 0, power: tuple[float, ...] = (100.0,), **kw: Any) -> ClosedWindow:
    ts = tuple(start + i * 2 * S for i in range(len(power)))
    return ClosedWindow(start, start + MIN, ts, power, **kw)


def test_default_vector_fits_the_forest_budget() -> None:
    spec = FeatureSpec()
    assert spec.names == (*DEFAULT_FEATURES, "tod_sin", "tod_cos")
    assert len(spec.names) <= 8
    assert FeatureSpec(time_of_day=False).names == DEFAULT_FEATURES
    assert len(spec.std_floors()) == len(spec.names)


def test_values_on_a_known_window() -> None:
    w = window(
        power=(100.0, 200.0, 600.0),
        voltage_sum_v=(690.0, 684.0, 0.0),
        voltage_count=(3, 3, 0),
        current_max_a=(10.0, 5.0, 0.0),
    )
    f = compute_features(w, FeatureSpec(features=ALL, time_of_day=False))
    assert list(f) == list(ALL)
    assert f["power_mean_w"] == pytest.approx(300.0)
    assert f["power_std_w"] == pytest.approx(math.sqrt((200**2 + 100**2 + 300**2) / 3))
    assert (f["power_max_w"], f["power_min_w"], f["n_readings"]) == (600.0, 100.0, 3.0)
    # readings at 0, 2, 4 s: 100 W for 2 s, 200 W for 2 s, 600 W held 30 s (capped)
    assert f["energy_wh"] == pytest.approx((100 * 2 + 200 * 2 + 600 * 30) / 3600)
    assert f["voltage_min_mean_v"] == pytest.approx(228.0)  # L2; L3 never reported
    assert (f["voltage_l1_mean_v"], f["voltage_l3_mean_v"]) == (230.0, 230.0)
    assert f["current_imbalance"] == pytest.approx(10.0 / 5.0)  # max / mean of (10, 5, 0)
    assert (f["current_l1_max_a"], f["current_l3_max_a"]) == (10.0, 0.0)


def test_fallbacks_without_phases() -> None:
    f = compute_features(window(), FeatureSpec(features=ALL))
    assert f["voltage_min_mean_v"] == 230.0
    assert f["current_imbalance"] == 1.0
    assert f["current_l2_max_a"] == 0.0
    one_phase = window(current_max_a=(16.0, None, None))
    assert compute_features(one_phase, FeatureSpec())["current_imbalance"] == 1.0
    no_current = window(current_max_a=(0.0, 0.0, 0.0))
    assert compute_features(no_current, FeatureSpec())["current_imbalance"] == 1.0
    nominal = FeatureSpec(nominal_voltage_v=120.0)
    assert compute_features(window(), nominal)["voltage_min_mean_v"] == 120.0


def test_single_and_empty_windows() -> None:
    f = compute_features(window(power=(750.0,)), FeatureSpec())
    assert (f["power_mean_w"], f["power_std_w"], f["power_min_w"]) == (750.0, 0.0, 750.0)
    empty = ClosedWindow(0, MIN, (), ())
    assert all(v == 0.0 for k, v in compute_features(empty, FeatureSpec()).items() if "power" in k)


floats = st.floats(allow_nan=True, allow_infinity=True)
maybe = st.one_of(st.none(), floats)


@st.composite
def any_window(draw: st.DrawFn) -> ClosedWindow:
    power = tuple(draw(st.lists(floats, max_size=40)))
    start = draw(st.integers(-(2**62), 2**62))
    return ClosedWindow(
        start_us=start,
        end_us=start + MIN,
        ts_us=tuple(start + i for i in range(len(power))),
        power_w=power,
        voltage_sum_v=draw(st.tuples(floats, floats, floats)),
        voltage_count=draw(st.tuples(*[st.integers(0, 100)] * 3)),
        current_max_a=draw(st.tuples(maybe, maybe, maybe)),
    )


@given(w=any_window(), tz=st.sampled_from(["UTC", "Europe/Oslo", "America/St_Johns"]))
def test_features_are_finite_for_any_window(w: ClosedWindow, tz: str) -> None:
    spec = FeatureSpec(features=ALL, tz=tz)
    f = compute_features(w, spec)
    assert list(f) == list(spec.names)
    assert all(math.isfinite(v) for v in f.values()), f
    assert all(math.isfinite(v) for v in vector(f, spec))


@given(power=st.lists(st.floats(-1e308, 1e308), min_size=1, max_size=40))
def test_huge_but_finite_powers(power: list[float]) -> None:
    f = compute_features(window(power=tuple(power)), FeatureSpec(features=ALL))
    assert all(math.isfinite(v) for v in f.values())


def tod(utc: str, tz: str = "Europe/Oslo") -> tuple[float, float]:
    start = int(datetime.fromisoformat(utc).timestamp()) * S
    f = compute_features(window(start=start), FeatureSpec(tz=tz))
    return f["tod_sin"], f["tod_cos"]


def at_hour(hours: float) -> tuple[float, float]:
    angle = 2 * math.pi * hours / 24
    return pytest.approx((math.sin(angle), math.cos(angle)), abs=1e-12)  # type: ignore[return-value]


def test_time_of_day_in_utc_and_winter_time() -> None:
    assert tod("2026-01-05T00:00+00:00", "UTC") == at_hour(0)
    assert tod("2026-01-05T06:00+00:00", "UTC") == at_hour(6)
    assert tod("2026-01-05T12:00+00:00") == at_hour(13)  # CET = UTC+1
    assert tod("2026-01-05T02:15+00:00") == at_hour(3.25)


def test_time_of_day_across_spring_forward_in_oslo() -> None:
    # 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST; local 02:xx never happens
    assert tod("2026-03-29T00:59+00:00") == at_hour(1 + 59 / 60)
    assert tod("2026-03-29T01:00+00:00") == at_hour(3)
    assert tod("2026-03-29T12:00+00:00") == at_hour(14)


def test_time_of_day_across_fall_back_in_oslo() -> None:
    # 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET; local 02:xx happens twice
    assert tod("2026-10-25T00:30+00:00") == at_hour(2.5)
    assert tod("2026-10-25T01:30+00:00") == at_hour(2.5)
    assert tod("2026-10-25T01:00+00:00") == at_hour(2)
    assert tod("2026-10-25T12:00+00:00") == at_hour(13)
    assert ZoneInfo("Europe/Oslo").utcoffset(datetime(2026, 10, 25, 12)) == timedelta(hours=1)


def test_vector_order_and_missing_features() -> None:
    spec = FeatureSpec(features=("power_max_w", "n_readings"), time_of_day=False)
    assert vector({"n_readings": 3.0, "power_max_w": 9.0, "extra": 1.0}, spec) == [9.0, 3.0]
    with pytest.raises(ValueError, match="n_readings"):
        vector({"power_max_w": 9.0}, spec)


def test_fingerprint_is_stable_and_covers_the_spec() -> None:
    # Pinned: a different value means every stored model id changes. Bump "v" on purpose only.
    assert FeatureSpec().fingerprint() == "aca2df867ab0a5e0"
    variants = [
        FeatureSpec(),
        FeatureSpec(time_of_day=False),
        FeatureSpec(tz="Europe/Oslo"),
        FeatureSpec(features=DEFAULT_FEATURES[::-1]),
        FeatureSpec(nominal_voltage_v=120.0),
        FeatureSpec(energy_max_gap_us=10 * S),
    ]
    assert len({v.fingerprint() for v in variants}) == len(variants)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ("power_mean_w", "bogus")}, "unknown features"),
        ({"features": ("tod_sin",)}, "time_of_day"),
        ({"features": ("power_mean_w", "power_mean_w")}, "duplicate"),
        ({"tz": "Mars/Olympus_Mons"}, "time zone"),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**kwargs)  # type: ignore[arg-type]
