"""Example queries for the README and docs/query.md; the tests run each one on test data.

docs/query.md shows the same text, and a test checks that it does, so the documented examples
are the tested ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One documented query."""

    name: str
    title: str
    sql: str


DAILY_KWH = Example(
    "daily-kwh",
    "Daily kWh per meter (UTC days)",
    """\
SELECT meter_id, day, round(kwh, 3) AS kwh
FROM daily_energy
ORDER BY meter_id, day""",
)

NIGHT_BASE_LOAD = Example(
    "night-base-load",
    "Night base load per ISO week: hourly mean power between 01:00 and 05:00 local time",
    """\
WITH hourly AS (
    SELECT meter_id,
           date_trunc('hour', timezone('Europe/Oslo', ts)) AS local_hour,
           avg(power_w) AS mean_w
    FROM readings
    GROUP BY ALL
)
SELECT meter_id,
       strftime(local_hour, '%G-W%V') AS iso_week,
       round(quantile_cont(mean_w, 0.1), 1) AS base_load_w,
       round(min(mean_w), 1) AS min_hour_w,
       count(*) AS night_hours
FROM hourly
WHERE hour(local_hour) BETWEEN 1 AND 4
GROUP BY ALL
ORDER BY meter_id, iso_week""",
)

TOP_POWER_HOURS = Example(
    "top-power-hours",
    "The ten hours with the highest mean power (kWh in one hour = mean kW)",
    """\
SELECT meter_id,
       date_trunc('hour', window_start) AS hour_start,
       round(sum(energy_wh) / 1000, 3) AS mean_kw
FROM window_energy
GROUP BY ALL
ORDER BY mean_kw DESC, meter_id, hour_start
LIMIT 10""",
)

AROUND_ANOMALY = Example(
    "around-anomaly",
    "The readings ten minutes either side of an anomaly",
    """\
SELECT ts, power_w, voltage_l1_v, current_l1_a, kafka_partition, kafka_offset
FROM readings
WHERE meter_id = 'home-1'
  AND ts BETWEEN TIMESTAMPTZ '2024-03-04 12:00:00+00' - INTERVAL 10 MINUTE
             AND TIMESTAMPTZ '2024-03-04 12:00:00+00' + INTERVAL 10 MINUTE
  AND date = DATE '2024-03-04'  -- optional: DuckDB then reads that day's files only
ORDER BY ts""",
)

EXAMPLES: tuple[Example, ...] = (DAILY_KWH, NIGHT_BASE_LOAD, TOP_POWER_HOURS, AROUND_ANOMALY)
