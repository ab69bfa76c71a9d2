-- TimescaleDB: hypertables with 1-day chunks for readings and 7-day chunks for scores (scores are
-- one row per window, far fewer than readings), and compression settings that keep one meter's
-- (and model's) rows together, newest first, which is how dashboards read them.
--
-- The compression, retention and refresh *policies* depend on METERSTREAM_DB_* settings and on
-- the TimescaleDB version, so sinks/db/policies.py sets them on every migrate, not this file.
SELECT create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day');
SELECT create_hypertable(
    'anomaly_scores', 'window_start', chunk_time_interval => INTERVAL '7 days'
);

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE anomaly_scores SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id, model_id',
    timescaledb.compress_orderby = 'window_start DESC'
);

-- The policy definitions last applied, so a migrate re-creates a policy only when its settings
-- changed (re-creating it on every sink start would reset its schedule).
CREATE TABLE meterstream_schema_policies (
    name text PRIMARY KEY,
    definition text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
