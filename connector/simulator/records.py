"""Turn rendered arrays into ``Reading`` dicts, time-major (ties in meter order).

This is the hot loop of the simulator: one dict literal per reading from values already
converted to Python objects column by column (``tolist`` is far faster than indexing numpy
arrays element by element). Every schema field is present, with None where the simulator has
nothing to say, so downstream code sees one record shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from connector.simulator.counters import CounterColumns
from connector.simulator.render import Electrical
from schemas.records import ReadingRecord

SOURCE = "simulator"


def _time_major(values: NDArray[Any]) -> list[Any]:
    """A (meters, steps) array as a flat list: all meters at step 0, then step 1, ..."""
    flat: list[Any] = values.T.ravel().tolist()
    return flat


def build_records(
    meter_ids: Sequence[str],
    ts: NDArray[np.int64],
    offset_minutes: NDArray[np.int64],
    *,
    three_phase: NDArray[np.bool_],
    electrical: Electrical,
    counters: CounterColumns,
) -> list[ReadingRecord]:
    """One record per (step, meter), ordered by step, then by meter.

    ``electrical.has_electrical`` decides whether voltage and current are present;
    single-phase meters report L1 only.
    """
    meters = len(meter_ids)
    # 0: no voltage/current in this frame, 1: L1 only, 2: all three phases.
    layout = electrical.has_electrical * (1 + three_phase[:, None].astype(np.int64))
    voltage, current = electrical.voltage_v, electrical.current_a
    columns = zip(
        list(meter_ids) * len(ts),
        np.repeat(ts, meters).tolist(),
        np.repeat(offset_minutes, meters).tolist(),
        _time_major(electrical.power_w),
        _time_major(counters.min_w),
        _time_major(counters.average_w),
        _time_major(counters.max_w),
        _time_major(counters.day_kwh),
        _time_major(counters.hour_kwh),
        _time_major(counters.register_kwh),
        _time_major(electrical.signal_dbm),
        _time_major(layout),
        *(_time_major(voltage[:, :, p]) for p in range(3)),
        *(_time_major(current[:, :, p]) for p in range(3)),
        strict=True,
    )
    records: list[ReadingRecord] = []
    append = records.append
    for (
        meter_id,
        ts_us,
        offset,
        power,
        low,
        mean,
        high,
        day,
        hour,
        register,
        signal,
        kind,
        l1_v,
        l2_v,
        l3_v,
        l1_a,
        l2_a,
        l3_a,
    ) in columns:
        if kind == 2:
            v1, v2, v3, i1, i2, i3 = l1_v, l2_v, l3_v, l1_a, l2_a, l3_a
        elif kind == 1:
            v1, i1 = l1_v, l1_a
            v2 = v3 = i2 = i3 = None
        else:
            v1 = v2 = v3 = i1 = i2 = i3 = None
        append(
            {
                "meter_id": meter_id,
                "source": SOURCE,
                "ts": ts_us,
                "ts_offset_minutes": offset,
                "received_at": ts_us,
                "power_w": power,
                "power_production_w": None,
                "min_power_w": low,
                "average_power_w": mean,
                "max_power_w": high,
                "min_power_production_w": None,
                "max_power_production_w": None,
                "accumulated_consumption_kwh": day,
                "accumulated_production_kwh": None,
                "accumulated_consumption_last_hour_kwh": hour,
                "accumulated_production_last_hour_kwh": None,
                "accumulated_cost": None,
                "accumulated_reward": None,
                "last_meter_consumption_kwh": register,
                "last_meter_production_kwh": None,
                "power_reactive_kvar": None,
                "power_production_reactive_kvar": None,
                "power_factor": None,
                "voltage_l1_v": v1,
                "voltage_l2_v": v2,
                "voltage_l3_v": v3,
                "current_l1_a": i1,
                "current_l2_a": i2,
                "current_l3_a": i3,
                "currency": None,
                "signal_strength": signal or None,
            }
        )
    return records
