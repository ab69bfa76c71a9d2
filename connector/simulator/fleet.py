"""All meters side by side: traits and day plans stacked into arrays indexed by meter.

Rendering works on (meters x steps) arrays, so per-meter values it needs are gathered here
once (traits at construction, plans once per local day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connector.simulator.appliances import MeterDayPlan
from connector.simulator.localtime import LocalDay
from connector.simulator.traits import MeterTraits

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Households:
    """The traits the renderer needs, as arrays over meters (row ``m`` is meter index ``m``)."""

    traits: tuple[MeterTraits, ...]
    base_w: Floats
    everyday_w: Floats
    split: Floats  # (meters, 3)
    three_phase: NDArray[np.bool_]
    every_frame: NDArray[np.bool_]
    nominal_v: Floats  # (meters, 3)
    dip_v: Floats
    line_ohm: Floats
    signal_dbm: Floats

    @classmethod
    def of(cls, traits: Sequence[MeterTraits]) -> Households:
        def column(name: str) -> Floats:
            return np.array([getattr(t, name) for t in traits], dtype=np.float64)

        return cls(
            traits=tuple(traits),
            base_w=column("base_w"),
            everyday_w=column("everyday_w"),
            split=column("load_split"),
            three_phase=np.array([t.phases == 3 for t in traits]),
            every_frame=np.array([t.voltage_every_frame for t in traits]),
            nominal_v=column("nominal_v"),
            dip_v=column("evening_dip_v"),
            line_ohm=column("line_ohm"),
            signal_dbm=column("signal_dbm"),
        )


@dataclass(frozen=True, eq=False)
class DayPlan:
    """All meters' plans for one local day, stacked; runs carry a meter index."""

    day: LocalDay
    run_meter: Ints
    run_start_us: Ints
    run_end_us: Ints
    run_watts: Floats  # (runs, 3)
    activity: Floats  # (meters, 25)
    wobble: Floats  # (meters, knots)
    drift: Floats  # (meters, knots, 3)

    @classmethod
    def stack(
        cls, day: LocalDay, plans: Sequence[MeterDayPlan], previous: DayPlan | None
    ) -> DayPlan:
        """Stack per-meter plans, adding the previous day's runs that go on past midnight."""
        meter = [np.full(len(p.starts_us), m, dtype=np.int64) for m, p in enumerate(plans)]
        start = [p.starts_us for p in plans]
        end = [p.ends_us for p in plans]
        watts = [p.watts for p in plans]
        if previous is not None:
            late = previous.run_end_us > day.start_us
            meter.append(previous.run_meter[late])
            start.append(previous.run_start_us[late])
            end.append(previous.run_end_us[late])
            watts.append(previous.run_watts[late])
        return cls(
            day=day,
            run_meter=np.concatenate(meter),
            run_start_us=np.concatenate(start),
            run_end_us=np.concatenate(end),
            run_watts=np.concatenate(watts),
            activity=np.stack([p.activity for p in plans]),
            wobble=np.stack([p.wobble_knots for p in plans]),
            drift=np.stack([p.drift_knots for p in plans]),
        )
