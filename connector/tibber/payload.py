"""Tibber ``liveMeasurement`` payloads to ``Reading`` records: pure, no I/O.

Tibber sends local time with the home's offset and a variable fraction
(``2021-03-14T01:43:37.5+01:00``). We store UTC microseconds in ``ts`` and the reported offset
in ``ts_offset_minutes``, so a DST change day comes out right and the original local time can
be rebuilt. Fields Tibber leaves null stay null: nothing is forward-filled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from schemas.records import ReadingRecord
from schemas.timestamps import datetime_to_micros

# Our field name for each Tibber field (units in our names; Tibber's are in its docs).
FIELD_MAP: Final[dict[str, str]] = {
    "power": "power_w",
    "powerProduction": "power_production_w",
    "minPower": "min_power_w",
    "averagePower": "average_power_w",
    "maxPower": "max_power_w",
    "minPowerProduction": "min_power_production_w",
    "maxPowerProduction": "max_power_production_w",
    "accumulatedConsumption": "accumulated_consumption_kwh",
    "accumulatedProduction": "accumulated_production_kwh",
    "accumulatedConsumptionLastHour": "accumulated_consumption_last_hour_kwh",
    "accumulatedProductionLastHour": "accumulated_production_last_hour_kwh",
    "accumulatedCost": "accumulated_cost",
    "accumulatedReward": "accumulated_reward",
    "currency": "currency",
    "lastMeterConsumption": "last_meter_consumption_kwh",
    "lastMeterProduction": "last_meter_production_kwh",
    "powerReactive": "power_reactive_kvar",
    "powerProductionReactive": "power_production_reactive_kvar",
    "powerFactor": "power_factor",
    "voltagePhase1": "voltage_l1_v",
    "voltagePhase2": "voltage_l2_v",
    "voltagePhase3": "voltage_l3_v",
    "currentL1": "current_l1_a",
    "currentL2": "current_l2_a",
    "currentL3": "current_l3_a",
    "signalStrength": "signal_strength",
}

# currentPhase1..3 are deprecated aliases of currentL1..3; used only when the new ones are null.
_DEPRECATED_CURRENTS: Final = {
    "currentL1": "currentPhase1",
    "currentL2": "currentPhase2",
    "currentL3": "currentPhase3",
}

_INT_FIELDS: Final = frozenset({"signal_strength"})
_STRING_FIELDS: Final = frozenset({"currency"})

# The GraphQL selection, generated from FIELD_MAP so the query and the mapping cannot drift.
LIVE_FIELDS: Final = " ".join(["timestamp", *FIELD_MAP])

_ISO: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})$"
)


class PayloadError(ValueError):
    """A payload that cannot become a Reading (the message says which field and why)."""


def parse_timestamp(text: str) -> tuple[int, int]:
    """UTC microseconds and the reported offset in minutes, from Tibber's ISO-8601 text.

    Any number of fraction digits is accepted (Tibber sends ``.5`` as well as ``.123456``);
    digits beyond microseconds are cut, not rounded, so a value never moves into the next second.

    >>> parse_timestamp("2021-03-14T01:43:37.5+01:00")
    (1615682617500000, 60)
    >>> parse_timestamp("2026-10-25T02:30:00+02:00"), parse_timestamp("2026-10-25T02:30:00+01:00")
    ((1792888200000000, 120), (1792891800000000, 60))
    """
    match = _ISO.match(text.strip())
    if match is None:
        raise PayloadError(f"timestamp {text!r} is not ISO 8601 with an offset")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if zone == "Z":
        offset_minutes = 0
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_minutes = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(timedelta(minutes=offset_minutes)),
        )
    except ValueError as exc:
        raise PayloadError(f"timestamp {text!r} is not a valid date: {exc}") from None
    return datetime_to_micros(local.astimezone(UTC)), offset_minutes


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{name} should be a number, got {type(value).__name__}")
    return float(value)


def to_reading(
    measurement: Mapping[str, Any], *, meter_id: str, received_at_us: int, source: str = "tibber"
) -> ReadingRecord:
    """Map one ``liveMeasurement`` object to a Reading (validation of values happens later).

    >>> r = to_reading({"timestamp": "2026-01-05T07:00:01.5+01:00", "power": 812.0,
    ...                 "voltagePhase1": None, "currentL1": 3.5}, meter_id="home-1",
    ...                received_at_us=1_767_592_802_000_000)
    >>> r["ts"], r["ts_offset_minutes"], r["power_w"], r["voltage_l1_v"], r["current_l1_a"]
    (1767592801500000, 60, 812.0, None, 3.5)
    """
    raw_ts = measurement.get("timestamp")
    if not isinstance(raw_ts, str):
        raise PayloadError("timestamp is missing")
    ts, offset = parse_timestamp(raw_ts)
    reading: dict[str, Any] = {
        "meter_id": meter_id,
        "source": source,
        "ts": ts,
        "ts_offset_minutes": offset,
        "received_at": received_at_us,
    }
    for tibber_name, ours in FIELD_MAP.items():
        value = measurement.get(tibber_name)
        if value is None and tibber_name in _DEPRECATED_CURRENTS:
            value = measurement.get(_DEPRECATED_CURRENTS[tibber_name])
        if ours in _STRING_FIELDS:
            reading[ours] = value if isinstance(value, str) else None
        elif ours in _INT_FIELDS:
            reading[ours] = (
                int(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else None
            )
        else:
            number = _number(tibber_name, value)
            # A non-finite optional value carries no information; power is judged by the validator.
            if number is not None and ours != "power_w" and not math.isfinite(number):
                number = None
            reading[ours] = number
    # power stays None here when Tibber sent null; the validator drops such readings with a reason.
    return reading  # type: ignore[return-value]
