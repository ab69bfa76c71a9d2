"""Energy counters and daily power statistics, integrated the way a meter would.

**Step-hold rule:** a reading's power is held until the next reading, so energy between two
readings is ``power_before * (t_after - t_before)`` and the energy function is piecewise
linear with a corner at each reading. From that:

* ``accumulated_consumption_kwh`` at a reading is the energy since local midnight up to that
  reading (0 right at midnight); the power held across midnight counts from midnight on.
* ``accumulated_consumption_last_hour_kwh`` is the energy since the latest local hour shift.
* ``last_meter_consumption_kwh`` is a register: its start value plus all energy since.
* ``min/average/max_power_w`` are over the powers in force since midnight (the one held
  across midnight included, unless a reading falls exactly on midnight); the average is energy / elapsed time (the reading's own power at zero elapsed),
  so ``min <= average <= max`` always.

The simulation has no history before its first reading: the day's counters start at zero
there. Counters carry from one call to the next and are computed with running sums, so
splitting the steps differently gives bit-identical values.

>>> import numpy as np
>>> from datetime import date
>>> from zoneinfo import ZoneInfo
>>> from connector.simulator.localtime import LocalDay
>>> day = LocalDay.of(ZoneInfo("UTC"), date(2026, 1, 5))
>>> counters = EnergyCounters(np.array([100.0]))
>>> ts = day.start_us + np.arange(4) * 900_000_000  # every 15 minutes
>>> out = counters.advance(day, ts, np.array([[1000.0, 2000.0, 0.0, 0.0]]))
>>> out.day_kwh.round(3).tolist(), out.hour_kwh.round(3).tolist()
([[0.0, 0.25, 0.75, 0.75]], [[0.0, 0.25, 0.75, 0.75]])
>>> [float(column[0, -1]) for column in (out.register_kwh, out.min_w, out.average_w, out.max_w)]
[100.75, 0.0, 1000.0, 2000.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from connector.simulator.localtime import HOUR_US, LocalDay

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

KWH_PER_WATT_US: Final = 1.0 / (1000.0 * HOUR_US)


@dataclass(frozen=True, eq=False)
class CounterColumns:
    """Counter values at each reading, arrays shaped (meters, steps)."""

    day_kwh: Floats
    hour_kwh: Floats
    register_kwh: Floats
    min_w: Floats
    average_w: Floats
    max_w: Floats


class EnergyCounters:
    """Running counters for a set of meters that read at the same instants."""

    def __init__(self, initial_register_kwh: Floats) -> None:
        meters = len(initial_register_kwh)
        self._day_start_us: int | None = None
        self._origin_us = 0  # the day's counters count from here (midnight or the first reading)
        self._last_us: int | None = None
        self._last_power = np.zeros(meters)
        self._energy = np.zeros(meters)  # kWh since origin, at the last reading
        self._register_at_origin = np.asarray(initial_register_kwh, dtype=np.float64).copy()
        self._min = np.full(meters, np.inf)
        self._max = np.full(meters, -np.inf)
        self._hour_index = -1
        self._hour_energy = np.zeros(meters)  # kWh since origin, at the current hour shift

    def advance(self, day: LocalDay, ts: Ints, power: Floats) -> CounterColumns:
        """Counters at readings ``ts`` (inside ``day``, after all earlier ones) of ``power``."""
        if day.start_us != self._day_start_us:
            self._start_day(day, int(ts[0]))
        assert self._last_us is not None
        times = np.concatenate([[self._last_us], ts])
        held = np.concatenate([self._last_power[:, None], power], axis=1)
        increments = held[:, :-1] * (np.diff(times) * KWH_PER_WATT_US)
        energy = np.cumsum(np.concatenate([self._energy[:, None], increments], axis=1), axis=1)

        # Energy at each hour shift the readings have passed: on the line through the
        # reading just before it (the carried value for the shift already in force).
        shift_index = np.searchsorted(day.hour_starts_us, ts, side="right") - 1
        first = int(shift_index[0])
        shifts = day.hour_starts_us[first : int(shift_index[-1]) + 1]
        before = np.maximum(np.searchsorted(times, shifts, side="right") - 1, 0)
        at_shift = energy[:, before] + held[:, before] * (
            (shifts - times[before]) * KWH_PER_WATT_US
        )
        if first == self._hour_index:
            at_shift[:, 0] = self._hour_energy
        hour_kwh = np.maximum(energy[:, 1:] - at_shift[:, shift_index - first], 0.0)

        running = np.concatenate([self._min[:, None], power], axis=1)
        low = np.minimum.accumulate(running, axis=1)[:, 1:]
        running[:, 0] = self._max
        high = np.maximum.accumulate(running, axis=1)[:, 1:]
        elapsed_h = (ts - self._origin_us) / HOUR_US
        average = np.divide(
            energy[:, 1:] * 1000.0, elapsed_h, out=power.copy(), where=elapsed_h > 0
        )
        day_kwh = energy[:, 1:]
        columns = CounterColumns(
            day_kwh=day_kwh,
            hour_kwh=hour_kwh,
            register_kwh=self._register_at_origin[:, None] + day_kwh,
            min_w=low,
            # Rounding can nudge the ratio a hair outside the range it is an average of.
            average_w=np.clip(np.round(average, 1), low, high),
            max_w=high,
        )
        self._last_us = int(ts[-1])
        self._last_power = power[:, -1].copy()
        self._energy = day_kwh[:, -1].copy()
        self._min, self._max = low[:, -1].copy(), high[:, -1].copy()
        self._hour_index = int(shift_index[-1])
        self._hour_energy = at_shift[:, -1].copy()
        return columns

    def _start_day(self, day: LocalDay, first_us: int) -> None:
        """Close the previous day (if any) at ``day``'s midnight and reset the day counters."""
        if self._last_us is None:  # the very first reading: nothing held before it
            self._last_us = self._origin_us = first_us
        else:
            register_now = self._register_at_origin + self._energy
            held = self._last_power * ((day.start_us - self._last_us) * KWH_PER_WATT_US)
            self._register_at_origin = register_now + held
            self._last_us = self._origin_us = day.start_us
            if first_us > day.start_us:  # the held power was in force after midnight
                self._min, self._max = self._last_power.copy(), self._last_power.copy()
            else:
                self._min, self._max = (
                    np.full_like(self._min, np.inf),
                    np.full_like(self._max, -np.inf),
                )
        self._energy = np.zeros_like(self._energy)
        self._hour_index = -1
        self._day_start_us = day.start_us
