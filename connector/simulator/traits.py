"""What each simulated household has, drawn once per meter from ``(seed, meter index)``.

Every random stream in the simulator is a ``numpy`` generator seeded with
``[seed, meter index, stream, ...]`` (see :func:`meter_rng`), so a meter's series never depends
on how many other meters are simulated or in which order they are generated.

>>> traits = draw_traits(seed=42, index=0, meter_id="sim-0001")
>>> traits == draw_traits(seed=42, index=0, meter_id="sim-0001")
True
>>> traits.phases in (1, 3), 60 <= traits.base_w <= 200
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Independent random streams per meter; the value is part of the generator's seed."""

    TRAITS = 1
    DAY_PLAN = 2
    NOISE = 3
    ANOMALIES = 4


def meter_rng(seed: int, index: int, stream: Stream, *more: int) -> np.random.Generator:
    """The generator for one meter's ``stream`` (``more`` selects e.g. a day or a block)."""
    return np.random.default_rng([seed, index, int(stream), *more])


@dataclass(frozen=True, slots=True)
class MeterTraits:
    """One household: its meter, wiring and appliances (``0`` watts means "has none").

    Powers are watts. ``load_split`` spreads the base and everyday loads over L1..L3 (all on
    L1 for a single-phase meter). ``voltage_every_frame`` False means the Kaifa/Aidon pattern:
    voltage and current only in frames whose second is a multiple of 10.
    """

    meter_id: str
    index: int
    phases: int
    voltage_every_frame: bool
    initial_register_kwh: float
    base_w: float
    everyday_w: float
    load_split: tuple[float, float, float]
    wake_hour: float
    dinner_hour: float
    fridge_w: float
    freezer_w: float
    water_heater_w: float
    heat_pump_w: float
    ev_charger_w: float
    ev_session_probability: float
    nominal_v: tuple[float, float, float]
    evening_dip_v: float
    line_ohm: float
    signal_dbm: float

    @property
    def has_ev(self) -> bool:
        """Whether the household charges an electric car (normally in the evening)."""
        return self.ev_charger_w > 0

    def spread(self, watts: float, phase: int | None) -> tuple[float, float, float]:
        """``watts`` on one phase, or evenly on all phases of the meter (``phase=None``).

        Whole watts per phase: event loads are summed with a cumulative sum, and integer
        values keep that sum exact.
        """
        if self.phases == 1 or phase == 0:
            return (float(round(watts)), 0.0, 0.0)
        if phase is None:
            third = float(round(watts / 3))
            return (third, third, third)
        return (0.0, float(round(watts)), 0.0) if phase == 1 else (0.0, 0.0, float(round(watts)))

    def pick_phase(self, rng: np.random.Generator) -> int:
        """A random phase of this meter for a single-phase appliance."""
        return int(rng.integers(self.phases))


def draw_traits(seed: int, index: int, meter_id: str) -> MeterTraits:
    """Draw meter ``index``'s household: about 70 % three-phase, 35 % with an EV, ...

    The ranges aim at Nordic homes: 5-40 kWh a day before an EV, heating mostly by a water
    heater or a heat pump, 230 V nominal with a few volts of local variation.
    """
    rng = meter_rng(seed, index, Stream.TRAITS)
    phases = 3 if rng.random() < 0.7 else 1
    split = rng.dirichlet((6.0, 6.0, 6.0)) if phases == 3 else np.array([1.0, 0.0, 0.0])
    has_ev = rng.random() < 0.35
    nominal = rng.uniform(229.0, 237.0)
    return MeterTraits(
        meter_id=meter_id,
        index=index,
        phases=phases,
        voltage_every_frame=bool(rng.random() < 0.35),
        initial_register_kwh=round(float(rng.uniform(2_000.0, 80_000.0)), 3),
        base_w=float(rng.uniform(60.0, 200.0)),
        everyday_w=float(rng.uniform(200.0, 600.0)),
        load_split=(float(split[0]), float(split[1]), float(split[2])),
        wake_hour=float(rng.uniform(5.75, 7.75)),
        dinner_hour=float(rng.uniform(16.5, 18.5)),
        fridge_w=float(rng.uniform(70.0, 150.0)),
        freezer_w=float(rng.uniform(80.0, 160.0)) if rng.random() < 0.5 else 0.0,
        water_heater_w=float(rng.uniform(2000.0, 3000.0)) if rng.random() < 0.6 else 0.0,
        heat_pump_w=float(rng.uniform(500.0, 1300.0)) if rng.random() < 0.3 else 0.0,
        ev_charger_w=(11_000.0 if phases == 3 else 7_400.0) if has_ev else 0.0,
        ev_session_probability=float(rng.uniform(0.4, 0.7)),
        nominal_v=(
            float(nominal + rng.normal(0.0, 0.8)),
            float(nominal + rng.normal(0.0, 0.8)),
            float(nominal + rng.normal(0.0, 0.8)),
        ),
        evening_dip_v=float(rng.uniform(1.5, 4.0)),
        line_ohm=float(rng.uniform(0.03, 0.08)),
        signal_dbm=float(rng.uniform(-85.0, -55.0)),
    )
