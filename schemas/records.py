"""Typed views of the records, matching ``schemas/avro/*.avsc`` field for field.

Records are plain dicts; these TypedDicts only tell the type checker what is in them. A field
with a schema default is ``NotRequired`` (``encode`` fills the default in), while ``decode``
always returns every field. Timestamps (``ts``, ``received_at``, ``window_start``, ...) are int
microseconds since the epoch, UTC; see :mod:`schemas.timestamps`. A unit test checks these keys
against the schemas, so a schema change that forgets this file fails.
"""

# No `from __future__ import annotations` here: on Python 3.11 TypedDict only sees NotRequired
# in annotations that are evaluated, and the required/optional key sets must be right.
from typing import NotRequired, TypedDict


class ReadingRecord(TypedDict):
    """``meterstream.Reading``: one smart-meter measurement (units in the field names)."""

    meter_id: str
    source: str
    ts: int
    ts_offset_minutes: NotRequired[int | None]
    received_at: int
    power_w: float
    power_production_w: NotRequired[float | None]
    min_power_w: NotRequired[float | None]
    average_power_w: NotRequired[float | None]
    max_power_w: NotRequired[float | None]
    min_power_production_w: NotRequired[float | None]
    max_power_production_w: NotRequired[float | None]
    accumulated_consumption_kwh: NotRequired[float | None]
    accumulated_production_kwh: NotRequired[float | None]
    accumulated_consumption_last_hour_kwh: NotRequired[float | None]
    accumulated_production_last_hour_kwh: NotRequired[float | None]
    accumulated_cost: NotRequired[float | None]
    accumulated_reward: NotRequired[float | None]
    last_meter_consumption_kwh: NotRequired[float | None]
    last_meter_production_kwh: NotRequired[float | None]
    power_reactive_kvar: NotRequired[float | None]
    power_production_reactive_kvar: NotRequired[float | None]
    power_factor: NotRequired[float | None]
    voltage_l1_v: NotRequired[float | None]
    voltage_l2_v: NotRequired[float | None]
    voltage_l3_v: NotRequired[float | None]
    current_l1_a: NotRequired[float | None]
    current_l2_a: NotRequired[float | None]
    current_l3_a: NotRequired[float | None]
    currency: NotRequired[str | None]
    signal_strength: NotRequired[int | None]


class ModelInfoRecord(TypedDict):
    """``meterstream.ModelInfo``: how the detector behind a score is configured."""

    engine: str
    num_trees: int
    sample_size: int
    shingle_size: int
    feature_names: list[str]
    threshold_kind: str


class AnomalyScoreRecord(TypedDict):
    """``meterstream.AnomalyScore``: one window's score from one model."""

    meter_id: str
    model_id: str
    window_start: int
    window_end: int
    n_readings: int
    features: dict[str, float]
    score: float
    threshold: NotRequired[float | None]
    is_anomaly: bool
    attribution: dict[str, float]
    model: ModelInfoRecord
    scored_at: int
