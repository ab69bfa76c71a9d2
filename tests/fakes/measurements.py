"""Realistic ``liveMeasurement`` payloads: Tibber timestamps and meter counters.

Tibber's backend formats timestamps in the home's local offset with a fraction whose trailing
zeros are dropped (.NET ``FFFFFFF``), so ``.5``, ``.123`` and no fraction at all all occur.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.fakes.homes import FakeHome

#: Every field of the LiveMeasurement type, in schema order.
LIVE_FIELDS: tuple[str, ...] = (
    "timestamp",
    "power",
    "lastMeterConsumption",
    "accumulatedConsumption",
    "accumulatedProduction",
    "accumulatedConsumptionLastHour",
    "accumulatedProductionLastHour",
    "accumulatedCost",
    "accumulatedReward",
    "currency",
    "minPower",
    "averagePower",
    "maxPower",
    "powerProduction",
    "powerReactive",
    "powerProductionReactive",
    "minPowerProduction",
    "maxPowerProduction",
    "lastMeterProduction",
    "powerFactor",
    "voltagePhase1",
    "voltagePhase2",
    "voltagePhase3",
    "currentL1",
    "currentL2",
    "currentL3",
    "currentPhase1",
    "currentPhase2",
    "currentPhase3",
    "signalStrength",
)

#: Sub-second offsets cycled by :func:`series_moments`, so fractions vary like Tibber's.
_JITTER_S = (0.0, 0.5, 0.123, 0.04, 0.987654, 0.25)


def tibber_timestamp(moment: datetime, tz: ZoneInfo | str | None = None) -> str:
    """Format ``moment`` as Tibber does: local offset, fraction without trailing zeros.

    A naive ``moment`` is taken to be local time in ``tz``.

    >>> from datetime import UTC
    >>> tibber_timestamp(datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=UTC), "Europe/Oslo")
    '2026-03-29T01:59:59.5+01:00'
    >>> tibber_timestamp(datetime(2026, 3, 29, 1, 0, 0, 123000, tzinfo=UTC), "Europe/Oslo")
    '2026-03-29T03:00:00.123+02:00'
    >>> tibber_timestamp(datetime(2026, 1, 5, 12, 0, 7), "Europe/Oslo")
    '2026-01-05T12:00:07+01:00'
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError("a naive moment needs a time zone")
        moment = moment.replace(tzinfo=zone)
    local = moment.astimezone(zone) if zone is not None else moment
    text = local.replace(microsecond=0).isoformat()
    fraction = f"{local.microsecond:06d}".rstrip("0")
    if not fraction:
        return text
    return f"{text[:19]}.{fraction}{text[19:]}"


def series_moments(start: datetime, count: int, interval_s: float) -> list[datetime]:
    """``count`` moments ``interval_s`` apart with varying sub-second parts (monotonic)."""
    jitter = _JITTER_S if interval_s >= 1.0 else (0.0,)
    # aware datetimes step in UTC: wall-clock arithmetic would walk into the DST gap
    base = start.astimezone(UTC) if start.tzinfo else start
    return [
        base + timedelta(seconds=i * interval_s + jitter[i % len(jitter)]) for i in range(count)
    ]


class MeterState:
    """The counters of one home's meter, advanced by every frame (delivered or not).

    ``accumulated*`` and min/average/max reset at local midnight, ``*LastHour`` at the hour
    shift, using the frame's own timestamp, as the real service does.
    """

    def __init__(self, home: FakeHome, seed: int = 0) -> None:
        self.home = home
        self._rng = random.Random(f"{seed}:{home.id}")
        self._last: datetime | None = None
        self._register_import = 12_345.678
        self._register_export = 321.5 if home.has_production else 0.0
        self._reset_day()
        self._reset_hour()

    def _reset_day(self) -> None:
        self.day_import = 0.0
        self.day_export = 0.0
        self.min_power: float | None = None
        self.max_power: float | None = None
        self.power_sum = 0.0
        self.power_count = 0

    def _reset_hour(self) -> None:
        self.hour_import = 0.0
        self.hour_export = 0.0

    def _moment(self, value: Any) -> tuple[str | None, datetime | None]:
        """The payload timestamp and, if it can be parsed, the moment it stands for."""
        if isinstance(value, datetime):
            return tibber_timestamp(value, self.home.tz), value
        if isinstance(value, str):
            try:
                return value, datetime.fromisoformat(value)
            except ValueError:
                return value, None
        return None, None

    def measurement(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """A full frame: realistic defaults, then ``overrides`` (an explicit None stays null)."""
        unknown = set(overrides) - set(LIVE_FIELDS)
        if unknown:
            raise TypeError(f"not LiveMeasurement fields: {sorted(unknown)}")
        tz = self.home.tz
        if "timestamp" in overrides:
            stamp, moment = self._moment(overrides["timestamp"])
        else:
            now = self._last + timedelta(seconds=2) if self._last else datetime.now(tz)
            stamp, moment = tibber_timestamp(now, tz), now
        if moment is not None:
            # keep instants in UTC so differences and steps are right across DST changes
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)
        elapsed = 2.0
        if moment is not None and self._last is not None:
            elapsed = min(max((moment - self._last).total_seconds(), 0.0), 3600.0)
            before, after = self._last.astimezone(tz), moment.astimezone(tz)
            if after.date() != before.date():
                self._reset_day()
            if after.replace(minute=0, second=0, microsecond=0) != before.replace(
                minute=0, second=0, microsecond=0
            ):
                self._reset_hour()
        if moment is not None:
            self._last = moment

        local = (moment or datetime.now(tz)).astimezone(tz)
        daily = 1.0 + 0.6 * math.sin((local.hour + local.minute / 60 - 7) / 24 * 2 * math.pi)
        default_power = round(900.0 * daily + self._rng.uniform(0, 400), 1)
        power = overrides.get("power", default_power)
        production = 0.0 if self.home.has_production else None
        production = overrides.get("powerProduction", production)

        watts = power if isinstance(power, int | float) else 0.0
        exported = production if isinstance(production, int | float) else 0.0
        kwh_in = watts * elapsed / 3_600_000
        kwh_out = exported * elapsed / 3_600_000
        self.day_import += kwh_in
        self.hour_import += kwh_in
        self.day_export += kwh_out
        self.hour_export += kwh_out
        self._register_import += kwh_in
        self._register_export += kwh_out
        if isinstance(power, int | float):
            self.min_power = watts if self.min_power is None else min(self.min_power, watts)
            self.max_power = watts if self.max_power is None else max(self.max_power, watts)
            self.power_sum += watts
            self.power_count += 1

        frame: dict[str, Any] = {
            "timestamp": stamp,
            "power": power,
            "lastMeterConsumption": round(self._register_import, 4),
            "accumulatedConsumption": round(self.day_import, 6),
            "accumulatedProduction": round(self.day_export, 6),
            "accumulatedConsumptionLastHour": round(self.hour_import, 6),
            "accumulatedProductionLastHour": round(self.hour_export, 6),
            "accumulatedCost": None,
            "accumulatedReward": None,
            "currency": None,
            "minPower": self.min_power if self.min_power is not None else 0.0,
            "averagePower": round(self.power_sum / self.power_count, 1)
            if self.power_count
            else 0.0,
            "maxPower": self.max_power if self.max_power is not None else 0.0,
            "powerProduction": production,
            "powerReactive": round(watts * 0.08 / 1000, 3),
            "powerProductionReactive": 0.0 if self.home.has_production else None,
            "minPowerProduction": 0.0 if self.home.has_production else None,
            "maxPowerProduction": exported if self.home.has_production else None,
            "lastMeterProduction": round(self._register_export, 4)
            if self.home.has_production
            else None,
            "powerFactor": 0.97,
            "signalStrength": -67,
        }
        if self.home.power_deal:
            frame["accumulatedCost"] = round(self.day_import * 1.35, 4)
            frame["accumulatedReward"] = round(self.day_export * 0.9, 4)
            frame["currency"] = self.home.currency
        frame.update(self._phase_values(local, watts))
        frame.update(overrides)
        if "timestamp" in overrides:
            frame["timestamp"] = stamp
        return {name: frame.get(name) for name in LIVE_FIELDS}

    def _phase_values(self, local: datetime, watts: float) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        mode = self.home.phase_values
        present = mode == "every_frame" or (mode == "every_10s" and local.second % 10 == 0)
        for phase in (1, 2, 3):
            on = present and phase <= self.home.phases
            amps = round(watts / 230.0 / self.home.phases, 2) if on else None
            values[f"voltagePhase{phase}"] = round(229.0 + phase * 0.7, 1) if on else None
            values[f"currentL{phase}"] = amps
            values[f"currentPhase{phase}"] = amps
        return values
