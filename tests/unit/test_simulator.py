"""The household simulator's contract: deterministic, batch-independent, schema-valid."""

from __future__ import annotations

import io
import itertools
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.simulator import (
    ANOMALY_KINDS,
    AnomalyConfig,
    AnomalyLabel,
    HouseholdSimulator,
    parse_speed,
    read_labels,
    write_labels,
)

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEW_YEAR_OSLO = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00
BEFORE_MIDNIGHT = NEW_YEAR_OSLO + DAY - 20 * MINUTE  # 23:40 local, so runs cross midnight


def run(sim: HouseholdSimulator, end_us: int, steps: int | None = None) -> list[dict[str, Any]]:
    return [dict(r) for batch in sim.batches(end_us=end_us, steps=steps) for r in batch]


def meter_series(records: list[dict[str, Any]], meter_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r["meter_id"] == meter_id]


def test_same_seed_gives_identical_readings_and_labels() -> None:
    end = NEW_YEAR_OSLO + 2 * HOUR
    first = HouseholdSimulator(3, start_us=NEW_YEAR_OSLO, seed=42)
    second = HouseholdSimulator(3, start_us=NEW_YEAR_OSLO, seed=42)
    assert run(first, end) == run(second, end)
    assert first.labels_until(end + 2 * DAY) == second.labels_until(end + 2 * DAY)


def test_different_seed_gives_different_readings_and_labels() -> None:
    end = NEW_YEAR_OSLO + HOUR
    a = HouseholdSimulator(3, start_us=NEW_YEAR_OSLO, seed=1)
    b = HouseholdSimulator(3, start_us=NEW_YEAR_OSLO, seed=2)
    powers_a = [r["power_w"] for r in run(a, end)]
    powers_b = [r["power_w"] for r in run(b, end)]
    assert powers_a != powers_b
    assert a.labels_until(end + 3 * DAY) != b.labels_until(end + 3 * DAY)


@pytest.mark.parametrize(("meter_id", "small", "large"), [("sim-0001", 1, 7), ("sim-0003", 3, 60)])
def test_a_meter_does_not_depend_on_how_many_meters_run(
    meter_id: str, small: int, large: int
) -> None:
    end = BEFORE_MIDNIGHT + 30 * MINUTE  # crosses midnight and a noise block
    few = HouseholdSimulator(small, start_us=BEFORE_MIDNIGHT, seed=5)
    many = HouseholdSimulator(large, start_us=BEFORE_MIDNIGHT, seed=5)
    assert meter_series(run(few, end), meter_id) == meter_series(run(many, end), meter_id)
    labels_few = [lab for lab in few.labels_until(end + DAY) if lab.meter_id == meter_id]
    labels_many = [lab for lab in many.labels_until(end + DAY) if lab.meter_id == meter_id]
    assert labels_few == labels_many


# Anomalies often enough that the reference run injects some, so splits cross them too.
BUSY = AnomalyConfig(
    ev_unusual_hour=40.0,
    stuck_appliance=40.0,
    standby_creep=40.0,
    phase_imbalance=40.0,
    voltage_sag=80.0,
)
SPLIT_STEPS = 1300  # 43 minutes of 2 s steps: crosses midnight and two noise blocks
_REFERENCE: list[dict[str, Any]] = []


def reference_run() -> list[dict[str, Any]]:
    if not _REFERENCE:
        sim = HouseholdSimulator(3, start_us=BEFORE_MIDNIGHT, seed=9, anomalies=BUSY)
        _REFERENCE.extend(dict(r) for r in sim.next_batch(SPLIT_STEPS))
    return _REFERENCE


def test_the_split_reference_run_contains_anomalies() -> None:
    sim = HouseholdSimulator(3, start_us=BEFORE_MIDNIGHT, seed=9, anomalies=BUSY)
    labels = sim.labels_until(BEFORE_MIDNIGHT + SPLIT_STEPS * 2_000_000)
    assert len({label.kind for label in labels}) >= 3


@given(
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
    tail_steps=st.integers(min_value=1, max_value=900),
)
def test_readings_do_not_depend_on_batch_sizes(cuts: list[int], tail_steps: int) -> None:
    sim = HouseholdSimulator(3, start_us=BEFORE_MIDNIGHT, seed=9, anomalies=BUSY)
    records: list[dict[str, Any]] = []
    for wanted in cuts:
        steps = min(wanted, SPLIT_STEPS - len(records) // 3)
        records.extend(dict(r) for r in sim.next_batch(steps))
    end = BEFORE_MIDNIGHT + SPLIT_STEPS * 2_000_000
    records.extend(run(sim, end, steps=tail_steps))
    assert records == reference_run()


def test_batches_are_time_ordered_with_ties_by_meter_id() -> None:
    sim = HouseholdSimulator(4, start_us=NEW_YEAR_OSLO + 500_000, interval_s=2.5, seed=3)
    end = sim.start_us + 10 * MINUTE
    batches = list(sim.batches(end_us=end, steps=37))
    assert all(0 < len(b) <= 37 * 4 for b in batches)
    keys = [(r["ts"], r["meter_id"]) for b in batches for r in b]
    assert keys == sorted(keys)
    assert len(keys) == 4 * math.ceil((end - sim.start_us) / 2_500_000)
    assert keys[-1][0] < end <= keys[-1][0] + 2_500_000
    assert all(
        r["source"] == "simulator" and r["received_at"] == r["ts"] for b in batches for r in b
    )
    assert sim.next_ts_us >= end
    assert list(sim.batches(end_us=end)) == []  # nothing left before end


def test_generation_is_unbounded_and_lazy() -> None:
    sim = HouseholdSimulator(2, start_us=NEW_YEAR_OSLO, seed=1)
    batches = list(itertools.islice(sim.batches(steps=5000), 40))  # 200,000 steps: 4.6 days
    assert sum(len(b) for b in batches) == 2 * 5000 * 40
    assert batches[-1][-1]["ts"] == NEW_YEAR_OSLO + (5000 * 40 - 1) * 2_000_000


def test_meter_ids_sort_in_meter_order() -> None:
    ids = HouseholdSimulator(10_000, start_us=0, anomalies=AnomalyConfig.none()).meter_ids
    assert ids[0] == "sim-00001"
    assert list(ids) == sorted(ids)
    assert HouseholdSimulator(2, start_us=0).meter_ids == ("sim-0001", "sim-0002")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"meters": 0},
        {"interval_s": 0.0},
        {"interval_s": math.nan},
        {"seed": -1},
        {"tz": "Mars/Olympus"},
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HouseholdSimulator(**{"meters": 2, "start_us": NEW_YEAR_OSLO, **kwargs})


def test_anomaly_config_validates_and_selects() -> None:
    with pytest.raises(ValueError, match="voltage_sag"):
        AnomalyConfig(voltage_sag=-1.0)
    with pytest.raises(ValueError, match="unknown"):
        AnomalyConfig.only("meteor_strike")  # type: ignore[arg-type]
    assert AnomalyConfig.only("stuck_appliance").enabled_kinds == ("stuck_appliance",)
    assert AnomalyConfig().enabled_kinds == ANOMALY_KINDS


@pytest.mark.parametrize(
    ("text", "speed"), [("1", 1.0), ("10", 10.0), ("0.25", 0.25), (" max ", None), ("MAX", None)]
)
def test_parse_speed(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["0", "-2", "fast", "", "inf", "nan"])
def test_parse_speed_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="simulator speed"):
        parse_speed(text)


def test_labels_round_trip_through_json_lines() -> None:
    sim = HouseholdSimulator(5, start_us=NEW_YEAR_OSLO, seed=42)
    labels = sim.labels_until(NEW_YEAR_OSLO + 2 * DAY)
    assert {label.kind for label in labels} == set(ANOMALY_KINDS)  # the defaults show each kind
    buffer = io.StringIO()
    assert write_labels(labels, buffer) == len(labels)
    assert read_labels(io.StringIO(buffer.getvalue() + "\n")) == labels
    line = labels[0].to_json()
    assert AnomalyLabel.from_json(line) == labels[0]
    assert re.fullmatch(r'\{"meter_id": "sim-000\d", "start": "20[\d-]+T[\d:]+Z", .*\}', line)


def test_labels_are_a_growing_prefix_and_never_before_the_start() -> None:
    sim = HouseholdSimulator(5, start_us=NEW_YEAR_OSLO + 123_456, seed=8)
    short, long = sim.labels_until(NEW_YEAR_OSLO + DAY), sim.labels_until(NEW_YEAR_OSLO + 3 * DAY)
    assert long[: len(short)] == short
    assert len(long) > len(short)
    assert all(lab.start_us >= sim.start_us and lab.start_us < NEW_YEAR_OSLO + DAY for lab in short)
    assert [(lab.start_us, lab.meter_id) for lab in long] == sorted(
        (lab.start_us, lab.meter_id) for lab in long
    )


def test_bad_label_lines_raise_value_error() -> None:
    with pytest.raises(ValueError, match="not an anomaly label"):
        read_labels(['{"meter_id": "sim-0001"}'])
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        AnomalyLabel("sim-0001", 0, 1, "meteor_strike")  # type: ignore[arg-type]


def _avro_check() -> Any:
    """Encode + decode with the project codec; fall back to fastavro validation if missing."""
    try:
        from schemas.codec import AvroCodec

        codec = AvroCodec.for_schema("Reading")
        return lambda record: codec.decode(codec.encode(record))
    except (ImportError, AttributeError):  # pragma: no cover - only while the codec is unfinished
        from fastavro import parse_schema
        from fastavro.validation import validate

        from schemas.loader import current_schema, strip_logical_types

        schema = parse_schema(strip_logical_types(current_schema("Reading")))
        return lambda record: validate(record, schema, raise_errors=True) and record


def test_records_are_valid_reading_avro() -> None:
    check = _avro_check()
    sim = HouseholdSimulator(6, start_us=NEW_YEAR_OSLO, seed=42, anomalies=BUSY)
    records = run(sim, NEW_YEAR_OSLO + 10 * MINUTE)
    for record in records:
        assert check(record) == record
