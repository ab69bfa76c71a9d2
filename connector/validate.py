"""Which readings may be published: one rule set for every source.

A reading is not published when its power is missing or not finite (nothing downstream can use
it), or when its timestamp lies further in the future than the allowed clock skew: one such
reading would move the meter's event-time watermark ahead and make every later reading "late"
in the worker. Rejections carry a reason; the caller counts them and logs or dead-letters them.
(Optional fields that are not finite become null where they are parsed: see the sources.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class DropReason(StrEnum):
    """Why a reading was not published (the label of the dropped-readings counter)."""

    POWER_MISSING = "power_missing"
    POWER_NOT_FINITE = "power_not_finite"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE = "duplicate"
    BAD_PAYLOAD = "bad_payload"
    BUFFER_FULL = "buffer_full"


def check_reading(reading: Mapping[str, Any], *, max_skew_us: int) -> DropReason | None:
    """The reason to drop ``reading``, or None when it may be published.

    >>> ok = {"meter_id": "m", "ts": 10, "received_at": 10, "power_w": 5.0}
    >>> check_reading(ok, max_skew_us=300_000_000) is None
    True
    >>> check_reading({**ok, "power_w": float("nan")}, max_skew_us=1).value
    'power_not_finite'
    >>> check_reading({**ok, "ts": 10 + 301_000_000}, max_skew_us=300_000_000).value
    'future_timestamp'
    """
    power = reading.get("power_w")
    if power is None:
        return DropReason.POWER_MISSING
    if not math.isfinite(power):
        return DropReason.POWER_NOT_FINITE
    if reading["ts"] > reading["received_at"] + max_skew_us:
        return DropReason.FUTURE_TIMESTAMP
    return None
