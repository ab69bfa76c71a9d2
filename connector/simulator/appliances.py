"""One household's day as a plan: appliance runs (start, end, watts per phase) and knots.

The plan is drawn per meter and local day from ``(seed, meter, day)``; only what must run on
across midnight (fridge and heat-pump cycles, standby reheats, the slow wobble of everyday
load and of the grid voltage) is carried in :class:`ApplianceState`, so days are planned in
order. Rendering readings from the plan is vectorized elsewhere (:mod:`.render`).

Everyday load follows a wall-clock activity profile (low at night, peaks after waking and in
the evening). On top come a fridge (and maybe a freezer) cycling, cooking around breakfast and
dinner, a dishwasher and a washing machine on some days, a water heater and/or a heat pump
(more in winter), and on EV homes a 7-11 kW evening charging session on about half the days.

>>> from datetime import date
>>> from zoneinfo import ZoneInfo
>>> from connector.simulator.localtime import LocalDay
>>> from connector.simulator.traits import draw_traits
>>> traits = draw_traits(seed=1, index=0, meter_id="sim-0001")
>>> day = LocalDay.of(ZoneInfo("Europe/Oslo"), date(2026, 1, 5))
>>> state = ApplianceState.initial(traits, day.start_us, seed=1)
>>> plan = plan_day(traits, state, day, seed=1)
>>> bool(plan.starts_us.min() >= day.start_us), plan.watts.shape[1]
(True, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from connector.simulator.localtime import HOUR_US, LocalDay
from connector.simulator.traits import MeterTraits, Stream, meter_rng

MINUTE_US: Final = 60_000_000
KNOT_US: Final = 10 * MINUTE_US
"""Everyday load and voltage wobble slowly: random knots every 10 minutes, linear between."""


@dataclass
class ApplianceState:
    """What carries over midnight for one meter (next cycle starts, last knot values)."""

    fridge_next_us: int
    freezer_next_us: int
    heat_pump_next_us: int
    reheat_next_us: int
    wobble: float = 1.0
    voltage_drift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def initial(cls, traits: MeterTraits, day_start_us: int, seed: int) -> ApplianceState:
        """Cycles at random points of their period when the first day starts."""
        rng = meter_rng(seed, traits.index, Stream.DAY_PLAN)
        fridge, freezer, heat_pump, reheat = (
            day_start_us + round(minutes * MINUTE_US) for minutes in rng.uniform(0, 60, size=4)
        )
        return cls(fridge, freezer, heat_pump, reheat)


@dataclass
class _Runs:
    """Appliance runs collected while planning, as parallel lists."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    watts: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, start_us: int, end_us: int, watts: tuple[float, float, float]) -> None:
        if end_us > start_us:
            self.starts.append(start_us)
            self.ends.append(end_us)
            self.watts.append(watts)


@dataclass(frozen=True, eq=False)
class MeterDayPlan:
    """A meter's day: appliance runs starting that day, and the wobble knots.

    ``wobble_knots[j]`` and ``drift_knots[j]`` (volts per phase) hold at ``start + j * KNOT_US``.
    ``activity`` is the everyday-load profile at wall-clock hours 0..24 (25 values, 0..~1).
    """

    starts_us: NDArray[np.int64]
    ends_us: NDArray[np.int64]
    watts: NDArray[np.float64]
    activity: NDArray[np.float64]
    wobble_knots: NDArray[np.float64]
    drift_knots: NDArray[np.float64]


def knot_count(day: LocalDay) -> int:
    """Knots covering the day, both ends included."""
    return -(-(day.end_us - day.start_us) // KNOT_US) + 1


def heating_season(day: LocalDay) -> float:
    """0 in mid-July, 1 in mid-January (northern hemisphere)."""
    return 0.5 + 0.5 * math.cos(2 * math.pi * (day.date.timetuple().tm_yday - 15) / 365.25)


def activity_profile(
    traits: MeterTraits, weekend: bool, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Everyday load by wall-clock hour: night low, a morning and a (higher) evening peak."""
    wake = traits.wake_hour + (1.5 if weekend else 0.0)
    midday = 0.45 if weekend else 0.25
    hours = [0, wake - 0.75, wake + 0.25, wake + 1.5, wake + 2.5, 12, 15.5]
    levels = [0.18, 0.12, 0.75, 0.55, midday, midday, 0.3]
    dinner = traits.dinner_hour
    hours += [dinner - 0.5, dinner + 1.5, 21.5, 23.0, 24.0]
    levels += [0.75, 1.0, 0.8, 0.4, 0.18]
    shape = np.interp(np.arange(25.0), hours, levels)
    jitter = rng.uniform(0.85, 1.15) * (1.0 + 0.1 * rng.standard_normal(25))
    profile: NDArray[np.float64] = np.maximum(shape * jitter, 0.05)
    profile[24] = profile[0]
    return profile


def plan_day(traits: MeterTraits, state: ApplianceState, day: LocalDay, seed: int) -> MeterDayPlan:
    """Plan meter ``traits`` for ``day``; updates ``state`` for the next day."""
    rng = meter_rng(seed, traits.index, Stream.DAY_PLAN, day.date.toordinal())
    weekend = day.date.weekday() >= 5
    runs = _Runs()
    _cycling(traits, state, day, rng, runs)
    _cooking(traits, day, weekend, rng, runs)
    _washing(traits, day, rng, runs)
    if traits.water_heater_w:
        _water_heater(traits, state, day, rng, runs)
    if traits.has_ev and rng.random() < traits.ev_session_probability:
        start = day.at_hour(rng.uniform(17.5, 23.0))
        watts = traits.ev_charger_w * rng.uniform(0.97, 1.0)
        hours = rng.uniform(8.0, 32.0) * 1000 / watts
        runs.add(start, start + round(hours * HOUR_US), traits.spread(watts, None))
    knots = knot_count(day)
    wobble = np.clip(1.0 + 0.25 * rng.standard_normal(knots), 0.4, 2.0)
    wobble[0] = state.wobble
    drift = rng.normal(0.0, 0.9, size=(knots, 1)) + rng.normal(0.0, 0.4, size=(knots, 3))
    drift[0] = state.voltage_drift
    state.wobble = float(wobble[-1])
    state.voltage_drift = (float(drift[-1, 0]), float(drift[-1, 1]), float(drift[-1, 2]))
    return MeterDayPlan(
        starts_us=np.array(runs.starts, dtype=np.int64),
        ends_us=np.array(runs.ends, dtype=np.int64),
        watts=np.array(runs.watts, dtype=np.float64).reshape(-1, 3),
        activity=activity_profile(traits, weekend, rng),
        wobble_knots=wobble,
        drift_knots=drift,
    )


def _minutes(rng: np.random.Generator, low: float, high: float) -> int:
    return round(rng.uniform(low, high) * MINUTE_US)


def _cycling(
    traits: MeterTraits, state: ApplianceState, day: LocalDay, rng: np.random.Generator, runs: _Runs
) -> None:
    """Thermostat cycles that run through midnight: fridge, freezer, heat pump."""
    phase = 0 if traits.phases == 1 else 1 + traits.index % 2
    while state.fridge_next_us < day.end_us:
        on = _minutes(rng, 8, 18)
        start = state.fridge_next_us
        runs.add(start, start + on, traits.spread(traits.fridge_w, phase))
        state.fridge_next_us = start + on + _minutes(rng, 15, 40)
    while traits.freezer_w and state.freezer_next_us < day.end_us:
        on = _minutes(rng, 10, 25)
        start = state.freezer_next_us
        runs.add(start, start + on, traits.spread(traits.freezer_w, 0))
        state.freezer_next_us = start + on + _minutes(rng, 25, 50)
    season = heating_season(day)
    while traits.heat_pump_w and state.heat_pump_next_us < day.end_us:
        start = state.heat_pump_next_us
        hour = (start - day.start_us) / HOUR_US  # close enough to wall time for a level
        night = 1.15 if hour < 7 or hour >= 22 else 0.9
        level = traits.heat_pump_w * (0.25 + 0.75 * season) * night * rng.uniform(0.8, 1.1)
        # Longer runs and shorter pauses the colder it is.
        on = round(_minutes(rng, 15, 35) * (0.5 + 0.5 * season))
        runs.add(start, start + on, traits.spread(level, None))
        state.heat_pump_next_us = start + on + round(_minutes(rng, 15, 35) * (1.6 - 0.8 * season))


def _cooking(
    traits: MeterTraits, day: LocalDay, weekend: bool, rng: np.random.Generator, runs: _Runs
) -> None:
    """Kettle and stove at breakfast, burners and sometimes the oven at dinner."""
    stove_phase = None  # the stove and oven draw from every phase the house has
    breakfast = day.at_hour(traits.wake_hour + (1.5 if weekend else 0.0) + rng.uniform(0.1, 0.6))
    runs.add(
        breakfast,
        breakfast + _minutes(rng, 2.5, 4.5),
        traits.spread(rng.uniform(2000, 2400), traits.pick_phase(rng)),
    )
    if rng.random() < 0.4:
        start = breakfast + _minutes(rng, 0, 10)
        runs.add(start, start + _minutes(rng, 6, 12), traits.spread(1200, stove_phase))
    if weekend and rng.random() < 0.5:
        start = day.at_hour(rng.uniform(12.0, 13.5))
        runs.add(start, start + _minutes(rng, 10, 20), traits.spread(1500, stove_phase))
    if rng.random() < 0.9:
        dinner = day.at_hour(traits.dinner_hour + rng.uniform(-0.5, 0.5))
        for _ in range(int(rng.integers(2, 5))):
            start = dinner + _minutes(rng, 0, 35)
            watts = rng.uniform(1200, 2300)
            burner = traits.pick_phase(rng)
            runs.add(start, start + _minutes(rng, 8, 25), traits.spread(watts, burner))
        if rng.random() < 0.35:
            oven = dinner + _minutes(rng, 0, 20)
            runs.add(oven, oven + _minutes(rng, 12, 18), traits.spread(2000, stove_phase))
            for k in range(1, 4):  # the oven's thermostat holding temperature
                start = oven + k * 12 * MINUTE_US
                runs.add(start, start + _minutes(rng, 3, 6), traits.spread(2000, stove_phase))


def _washing(traits: MeterTraits, day: LocalDay, rng: np.random.Generator, runs: _Runs) -> None:
    """Dishwasher in the evening on about half the days, laundry on some days."""
    if rng.random() < 0.55:
        start = day.at_hour(rng.uniform(19.5, 22.5))
        phase = traits.pick_phase(rng)
        runs.add(start, start + 120 * MINUTE_US, traits.spread(80, phase))
        for at in (5, 70):
            heat = start + at * MINUTE_US
            runs.add(heat, heat + _minutes(rng, 15, 20), traits.spread(1900, phase))
    if rng.random() < 0.3:
        start = day.at_hour(rng.uniform(9.0, 19.0))
        phase = traits.pick_phase(rng)
        runs.add(start, start + _minutes(rng, 12, 18), traits.spread(2000, phase))
        runs.add(start, start + 75 * MINUTE_US, traits.spread(250, phase))
        if rng.random() < 0.5:  # tumble dryer after the wash
            dryer = start + 80 * MINUTE_US
            runs.add(dryer, dryer + _minutes(rng, 45, 70), traits.spread(2200, phase))


def _water_heater(
    traits: MeterTraits, state: ApplianceState, day: LocalDay, rng: np.random.Generator, runs: _Runs
) -> None:
    """Reheats after morning showers and the evening, plus standby reheats every few hours."""
    watts = traits.spread(traits.water_heater_w, 0)
    morning = day.at_hour(traits.wake_hour + rng.uniform(0.2, 1.0))
    runs.add(morning, morning + _minutes(rng, 40, 90), watts)
    evening = day.at_hour(rng.uniform(19.0, 22.5))
    runs.add(evening, evening + _minutes(rng, 25, 60), watts)
    while state.reheat_next_us < day.end_us:
        start = state.reheat_next_us
        runs.add(start, start + _minutes(rng, 8, 18), watts)
        state.reheat_next_us = start + _minutes(rng, 180, 360)
