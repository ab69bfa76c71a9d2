"""``METERSTREAM_SIM_SPEED``: how fast simulated time runs against the wall clock.

The simulator itself only computes readings; pacing them is the connector's job. This parses
the setting once so every shell agrees on what it means.
"""

from __future__ import annotations

import math


def parse_speed(text: str) -> float | None:
    """Speed-up factor from ``"1"`` (real time), ``"10"``, ``"0.5"``, ...; ``"max"`` gives None.

    None means "as fast as possible": no pacing at all.

    >>> parse_speed("1"), parse_speed(" 10 "), parse_speed("MAX")
    (1.0, 10.0, None)
    >>> parse_speed("0")
    Traceback (most recent call last):
    ...
    ValueError: simulator speed must be a number > 0 (1 = real time, 10 = ten times faster) or 'max', got '0'
    """
    cleaned = text.strip().lower()
    if cleaned == "max":
        return None
    try:
        speed = float(cleaned)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(
            "simulator speed must be a number > 0 (1 = real time, 10 = ten times faster) "
            f"or 'max', got {text!r}"
        )
    return speed
