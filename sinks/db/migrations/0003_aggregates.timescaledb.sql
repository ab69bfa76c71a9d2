-- TimescaleDB: continuous aggregates with the same names, columns and types as the plain views.
-- materialized_only = false (real-time aggregation) adds the rows not yet materialized, so the
-- newest hour is always complete; the refresh policies (sinks/db/policies.py) materialize the
-- recent days, and sinks/db/aggregates.py:refresh_aggregates covers rows written further back
-- (replay). WITH NO DATA lets this run inside the migration's transaction (a refresh cannot).
--
-- energy_kwh: the plain view applies the energy rule exactly (streams/core/energy.py with the
-- hour as the window: hold each power until the next reading, the last until the end of the
-- hour, the first back to its start, every hold capped at 30 s). A continuous aggregate allows no
-- window functions, so there is no "next reading" here. What aggregates can give is kept exact:
-- the lead-in (first reading, back to the hour's start) and the tail (last reading, to the hour's
-- end), via TimescaleDB's first()/last(). The gaps in between are approximated: every reading but
-- the last holds the hour's mean gap (span / (n - 1)), capped at 30 s. With a steady cadence this
-- equals the exact rule; with an irregular one it weights readings equally instead of by their
-- own gaps, and a long silence inside the hour is spread over the mean instead of capped.
-- No "+ interval" appears (timestamptz + interval is not immutable, which caggs require): the
-- tail is 3600 s minus the last reading's offset into the hour.
CREATE MATERIALIZED VIEW readings_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    meter_id,
    time_bucket(INTERVAL '1 hour', ts) AS bucket,
    count(*) AS n_readings,
    avg(power_w) AS mean_power_w,
    max(power_w) AS max_power_w,
    min(power_w) AS min_power_w,
    (
        (sum(power_w) - last(power_w, ts))
        * coalesce(
            least(extract(epoch FROM max(ts) - min(ts)) / nullif(count(*) - 1, 0), 30), 0
        )::double precision
        + first(power_w, ts)
        * least(extract(epoch FROM min(ts) - time_bucket(INTERVAL '1 hour', ts)), 30)::double precision
        + last(power_w, ts)
        * least(
            3600 - extract(epoch FROM max(ts) - time_bucket(INTERVAL '1 hour', ts)), 30
        )::double precision
    )::double precision / 3600000.0 AS energy_kwh
FROM readings
GROUP BY meter_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW scores_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    meter_id,
    model_id,
    time_bucket(INTERVAL '1 hour', window_start) AS bucket,
    count(*) AS n_windows,
    avg(score) AS mean_score,
    max(score) AS max_score,
    sum(is_anomaly::integer) AS anomalies
FROM anomaly_scores
GROUP BY meter_id, model_id, time_bucket(INTERVAL '1 hour', window_start)
WITH NO DATA;
