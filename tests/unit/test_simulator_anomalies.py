"""Injected anomalies show inside their labels and nowhere else.

Each kind is checked against a counterfactual: the same seed with no anomalies. Switching a
kind on changes the readings only inside its labels' spans, and there in the way the kind
promises; the normal load is untouched by the anomaly schedule.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from connector.simulator import (
    ANOMALY_KINDS,
    AnomalyConfig,
    AnomalyKind,
    AnomalyLabel,
    HouseholdSimulator,
)

HOUR = 3_600_000_000
DAY = 24 * HOUR
START = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00
END = START + 2 * DAY
METERS = 4
SEED = 9  # three three-phase meters, two with an EV, both voltage patterns
FIELDS = (
    "power_w",
    *(f"voltage_l{p}_v" for p in (1, 2, 3)),
    *(f"current_l{p}_a" for p in (1, 2, 3)),
)


def columns(config: AnomalyConfig) -> tuple[HouseholdSimulator, dict[str, np.ndarray]]:
    """Readings as arrays shaped (meters, steps), None as NaN; 20 s steps, all with voltage."""
    sim = HouseholdSimulator(METERS, start_us=START, interval_s=20, seed=SEED, anomalies=config)
    records = [r for batch in sim.batches(end_us=END) for r in batch]
    out = {
        name: np.array([np.nan if r[name] is None else r[name] for r in records])
        .reshape(-1, METERS)
        .T
        for name in FIELDS
    }
    out["ts"] = np.array([r["ts"] for r in records[::METERS]])
    return sim, out


@pytest.fixture(scope="module")
def normal() -> dict[str, np.ndarray]:
    return columns(AnomalyConfig.none())[1]


def inside(labels: list[AnomalyLabel], meter: int, ts: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(ts), dtype=bool)
    for label in labels:
        if label.meter_id == f"sim-{meter + 1:04d}":
            mask |= (ts >= label.start_us) & (ts < label.end_us)
    return mask


def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_changes_readings_only_inside_its_labels(
    kind: AnomalyKind, normal: dict[str, np.ndarray]
) -> None:
    sim, injected = columns(AnomalyConfig.only(kind, rate=1.5))
    labels = sim.labels_until(END)
    assert labels
    assert {label.kind for label in labels} == {kind}
    ts = normal["ts"]
    for meter in range(METERS):
        span = inside(labels, meter, ts)
        for name in FIELDS:
            unchanged = same(injected[name][meter], normal[name][meter])
            assert unchanged[~span].all(), (kind, meter, name)
    for label in labels:
        meter = int(label.meter_id[4:]) - 1
        steps = (ts >= label.start_us) & (ts < label.end_us)
        assert steps.any(), label
        CHECKS[kind](
            label,
            sim,
            {k: v[meter][steps] for k, v in injected.items() if k != "ts"},
            {k: v[meter][steps] for k, v in normal.items() if k != "ts"},
        )


def _extra_power(injected: dict[str, np.ndarray], normal: dict[str, np.ndarray]) -> np.ndarray:
    return injected["power_w"] - normal["power_w"]


def check_ev(label: AnomalyLabel, sim: HouseholdSimulator, injected: Any, normal: Any) -> None:
    assert 1 <= datetime.fromtimestamp(label.start_us / 1e6, ZoneInfo("Europe/Oslo")).hour < 5
    assert (_extra_power(injected, normal) > 6_500).all()
    assert 1 * HOUR <= label.end_us - label.start_us <= 5.5 * HOUR


def check_stuck(label: AnomalyLabel, sim: HouseholdSimulator, injected: Any, normal: Any) -> None:
    extra = _extra_power(injected, normal)
    assert (extra > 1_800).all()
    assert (extra < 3_200).all()
    assert 3 * HOUR <= label.end_us - label.start_us <= 8 * HOUR


def check_creep(label: AnomalyLabel, sim: HouseholdSimulator, injected: Any, normal: Any) -> None:
    extra = _extra_power(injected, normal)
    quarter = len(extra) // 4
    assert extra[:quarter].mean() < extra[-quarter:].mean()
    assert extra[-quarter:].mean() > 60 or label.end_us > END  # a creep cut off by the run's end
    assert extra[-quarter:].mean() < 210


def check_imbalance(
    label: AnomalyLabel, sim: HouseholdSimulator, injected: Any, normal: Any
) -> None:
    currents = np.stack([injected[f"current_l{p}_a"] for p in (1, 2, 3)])
    assert (currents.max(axis=0) >= 0.85 * currents.sum(axis=0)).all()
    assert (injected["power_w"] == normal["power_w"]).all()  # the total does not change
    assert 1 * HOUR <= label.end_us - label.start_us <= 3 * HOUR


def check_sag(label: AnomalyLabel, sim: HouseholdSimulator, injected: Any, normal: Any) -> None:
    volts = np.stack([injected[f"voltage_l{p}_v"] for p in (1, 2, 3)])
    assert (np.nanmin(volts, axis=0) < 210).all()
    assert (np.nanmin(volts, axis=0) >= 195).all()
    assert (injected["power_w"] == normal["power_w"]).all()
    assert 60_000_000 <= label.end_us - label.start_us <= 600_000_000


CHECKS = {
    "ev_unusual_hour": check_ev,
    "stuck_appliance": check_stuck,
    "standby_creep": check_creep,
    "phase_imbalance": check_imbalance,
    "voltage_sag": check_sag,
}


def test_with_every_kind_on_low_voltage_means_a_sag_label() -> None:
    sim, injected = columns(AnomalyConfig())
    labels = sim.labels_until(END)
    sags = [label for label in labels if label.kind == "voltage_sag"]
    assert sags
    ts = injected["ts"]
    for meter in range(METERS):
        volts = np.stack([injected[f"voltage_l{p}_v"][meter] for p in (1, 2, 3)])
        low = np.nanmin(volts, axis=0) < 210
        assert (low == inside(sags, meter, ts)).all()


def test_labels_of_one_kind_never_overlap_on_a_meter() -> None:
    sim = HouseholdSimulator(
        10, start_us=START, seed=3, anomalies=AnomalyConfig.only(*ANOMALY_KINDS, rate=2.0)
    )
    labels = sim.labels_until(START + 10 * DAY)
    for kind in ANOMALY_KINDS:
        for meter_id in sim.meter_ids:
            spans = sorted(
                (lab.start_us, lab.end_us)
                for lab in labels
                if lab.kind == kind and lab.meter_id == meter_id
            )
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    single_phase = {t.meter_id for t in sim.traits if t.phases == 1}
    assert not [
        lab for lab in labels if lab.kind == "phase_imbalance" and lab.meter_id in single_phase
    ]
