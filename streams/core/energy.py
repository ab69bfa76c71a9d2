"""The energy rule, stated once: the worker's window features and the lake's SQL both use it.

A window's energy depends only on the readings inside it, so windows are independent and
additive: a day's energy is the sum of its windows' energies, whichever way the readings were
batched, and the end-to-end test can compare the worker's windows with the lake's daily kWh.

The rule differs slightly from the simulator's counters (:mod:`connector.simulator.counters`),
which hold a power across window boundaries: here the gap between the last reading of one
window and the first of the next is split at the boundary, each side held by its own window's
reading. Both are step-hold; daily totals differ by at most the boundary gaps times the power
change across them.

The same rule in SQL
--------------------
:data:`WINDOW_ENERGY_SQL` is a DuckDB sketch over a ``readings`` relation with ``meter_id``,
``ts`` (epoch microseconds, BIGINT; use ``epoch_us(ts)`` for a TIMESTAMP column), ``power_w``,
``kafka_partition`` and ``kafka_offset``. ``{size_us}`` and ``{max_gap_us}`` are filled in from
the settings (they are integers, never user input). A unit test runs it against
:func:`window_energy_wh`. Timestamps must be non-negative (``%`` truncates toward zero)::

    WITH one_per_ts AS (        -- the first arrival of each (meter_id, ts) wins
        SELECT meter_id, ts, power_w, ts - ts % {size_us} AS window_start
        FROM readings
        QUALIFY row_number() OVER (
            PARTITION BY meter_id, ts ORDER BY kafka_partition, kafka_offset) = 1
    ), held AS (
        SELECT meter_id, window_start, power_w,
            least(coalesce(lead(ts) OVER w, window_start + {size_us}) - ts, {max_gap_us})
            + CASE WHEN lag(ts) OVER w IS NULL
                   THEN least(ts - window_start, {max_gap_us}) ELSE 0 END AS hold_us
        FROM one_per_ts
        WINDOW w AS (PARTITION BY meter_id, window_start ORDER BY ts)
    )
    SELECT meter_id, window_start, sum(power_w * hold_us) / 3.6e9 AS energy_wh
    FROM held GROUP BY meter_id, window_start

Daily kWh is then ``sum(energy_wh) / 1000`` grouped by the local day of ``window_start``
(a window never straddles a local midnight while the UTC offset is a multiple of the size).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

__all__ = [
    "ENERGY_RULE",
    "WINDOW_ENERGY_SQL",
    "daily_energy_kwh",
    "energy_by_window",
    "window_energy_wh",
]

US_PER_HOUR = 3_600_000_000  # W·µs per Wh

ENERGY_RULE = (
    "Within [start, end), readings sorted by ts; reading i holds its power from t_i to t_{i+1} "
    "(the last one to end), the first one also covers [start, t_0); every hold is capped at "
    "max_gap; E = sum(p_i * hold_i) / 3.6e9 Wh (µs·W -> Wh). One reading per ts: the first "
    "arrival (lowest Kafka offset)."
)

WINDOW_ENERGY_SQL = """\
WITH one_per_ts AS (
    SELECT meter_id, ts, power_w, ts - ts % {size_us} AS window_start
    FROM readings
    QUALIFY row_number() OVER (
        PARTITION BY meter_id, ts ORDER BY kafka_partition, kafka_offset) = 1
), held AS (
    SELECT meter_id, window_start, power_w,
        least(coalesce(lead(ts) OVER w, window_start + {size_us}) - ts, {max_gap_us})
        + CASE WHEN lag(ts) OVER w IS NULL
               THEN least(ts - window_start, {max_gap_us}) ELSE 0 END AS hold_us
    FROM one_per_ts
    WINDOW w AS (PARTITION BY meter_id, window_start ORDER BY ts)
)
SELECT meter_id, window_start, sum(power_w * hold_us) / 3.6e9 AS energy_wh
FROM held GROUP BY meter_id, window_start
"""


def window_energy_wh(
    ts_us: Sequence[int], power_w: Sequence[float], start_us: int, end_us: int, max_gap_us: int
) -> float:
    """Energy of one window in Wh, by the step-hold rule.

    Rule: within [start, end), readings sorted by ts; reading i holds its power from t_i to
    t_{i+1} (the last one to ``end``), the first one also covers [start, t_0); every hold is
    capped at max_gap; E = Σ p_i·hold_i / 3.6e9 Wh (µs·W → Wh).

    Readings outside [start, end) are ignored; unsorted input is sorted; of several readings
    with the same ts only the first in input order counts (the windowing keeps the first
    arrival too). No readings → 0.0. Non-finite powers propagate (features sanitise them).

    >>> S = 1_000_000
    >>> window_energy_wh([0, 30 * S], [1000.0, 1000.0], 0, 60 * S, 30 * S)  # 1 kW for 60 s
    16.666666666666668
    >>> window_energy_wh([20 * S], [3600.0], 0, 60 * S, 30 * S)  # 20 s back + capped 30 s ahead
    50.0
    """
    if end_us <= start_us:
        raise ValueError(f"empty window [{start_us}, {end_us})")
    if max_gap_us < 0:
        raise ValueError(f"max_gap_us must be >= 0, got {max_gap_us}")
    if len(ts_us) != len(power_w):
        raise ValueError(f"{len(ts_us)} timestamps but {len(power_w)} powers")
    pairs = [(t, p) for t, p in zip(ts_us, power_w, strict=True) if start_us <= t < end_us]
    if not pairs:
        return 0.0
    pairs.sort(key=itemgetter(0))  # stable: equal ts keep input order, so the first one wins
    prev_t, prev_p = pairs[0]
    total = prev_p * min(prev_t - start_us, max_gap_us)
    for t, p in pairs[1:]:
        if t == prev_t:
            continue
        total += prev_p * min(t - prev_t, max_gap_us)
        prev_t, prev_p = t, p
    total += prev_p * min(end_us - prev_t, max_gap_us)
    return total / US_PER_HOUR


def energy_by_window(
    ts_us: Sequence[int], power_w: Sequence[float], size_us: int, max_gap_us: int
) -> dict[int, float]:
    """Wh per epoch-aligned window start, for the windows that have readings (sorted by start)."""
    if len(ts_us) != len(power_w):
        raise ValueError(f"{len(ts_us)} timestamps but {len(power_w)} powers")
    groups: dict[int, tuple[list[int], list[float]]] = {}
    for t, p in zip(ts_us, power_w, strict=True):
        ts_list, p_list = groups.setdefault(t - t % size_us, ([], []))
        ts_list.append(t)
        p_list.append(p)
    return {
        start: window_energy_wh(ts, ps, start, start + size_us, max_gap_us)
        for start, (ts, ps) in sorted(groups.items())
    }


def daily_energy_kwh(
    ts_us: Sequence[int],
    power_w: Sequence[float],
    *,
    day_start_us: int,
    day_end_us: int,
    size_us: int,
    max_gap_us: int,
) -> float:
    """kWh of a day [day_start, day_end): the sum of its windows' energies.

    Both bounds must be window boundaries (a local day is, for minute-aligned UTC offsets and
    windows that divide an hour). Readings outside the day are ignored.

    >>> S, H = 1_000_000, 3_600_000_000
    >>> ts = list(range(0, 24 * H, 10 * S))  # 500 W all day, every 10 s
    >>> round(daily_energy_kwh(
    ...     ts, [500.0] * len(ts), day_start_us=0, day_end_us=24 * H, size_us=60 * S, max_gap_us=30 * S
    ... ), 9)
    12.0
    """
    if day_start_us % size_us or day_end_us % size_us:
        raise ValueError("day bounds must be window boundaries")
    inside = [(t, p) for t, p in zip(ts_us, power_w, strict=True) if day_start_us <= t < day_end_us]
    windows = energy_by_window([t for t, _ in inside], [p for _, p in inside], size_us, max_gap_us)
    return sum(windows.values()) / 1000.0
