-- Plain PostgreSQL: the hourly aggregates are ordinary views, computed at query time, with the
-- same names, columns and types as the TimescaleDB continuous aggregates. Buckets are whole UTC
-- hours: date_bin from a UTC origin (immutable, unlike date_trunc on timestamptz, so the session
-- time zone does not matter), as time_bucket does on TimescaleDB.
--
-- energy_kwh follows the project's one energy rule (streams/core/energy.py, ENERGY_RULE) with the
-- hour as the window: within the hour, each reading holds its power until the meter's next
-- reading, the last one until the end of the hour, the first one also back to the start of the
-- hour, every hold capped at 30 s (a longer gap means the meter was silent, not steady; the
-- worker's METERSTREAM_WORKER_ENERGY_MAX_GAP default). Hours are independent and additive, so
-- a day's hours sum to the day's energy, as the worker's windows and the lake's SQL do.
CREATE VIEW readings_hourly AS
SELECT
    meter_id,
    bucket,
    count(*) AS n_readings,
    avg(power_w) AS mean_power_w,
    max(power_w) AS max_power_w,
    min(power_w) AS min_power_w,
    (sum(power_w * held_s) / 3600000.0)::double precision AS energy_kwh
FROM (
    SELECT
        meter_id,
        bucket,
        power_w,
        (
            least(
                extract(epoch FROM coalesce(lead(ts) OVER hour, bucket + INTERVAL '1 hour') - ts),
                30
            )
            + CASE
                WHEN lag(ts) OVER hour IS NULL THEN least(extract(epoch FROM ts - bucket), 30)
                ELSE 0
            END
        )::double precision AS held_s
    FROM (
        SELECT
            meter_id,
            ts,
            power_w,
            date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket
        FROM readings
    ) AS bucketed
    -- Partitioned by (meter_id, bucket): a filter on either column of the view is pushed down
    -- to the table (and the bucket expression matches the index below).
    WINDOW hour AS (PARTITION BY meter_id, bucket ORDER BY ts)
) AS held
GROUP BY meter_id, bucket;

CREATE VIEW scores_hourly AS
SELECT
    meter_id,
    model_id,
    date_bin(INTERVAL '1 hour', window_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
    count(*) AS n_windows,
    avg(score) AS mean_score,
    max(score) AS max_score,
    sum(is_anomaly::integer) AS anomalies
FROM anomaly_scores
GROUP BY
    meter_id,
    model_id,
    date_bin(INTERVAL '1 hour', window_start, TIMESTAMPTZ '2000-01-01 00:00:00+00');

-- "WHERE bucket >= ..." on a view becomes a condition on these expressions; BRIN indexes on them
-- keep a dashboard's last-day query from reading the whole table.
CREATE INDEX readings_hour_brin ON readings
    USING brin (date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'));
CREATE INDEX anomaly_scores_hour_brin ON anomaly_scores
    USING brin (date_bin(INTERVAL '1 hour', window_start, TIMESTAMPTZ '2000-01-01 00:00:00+00'));
