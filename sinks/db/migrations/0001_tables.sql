-- The two tables of docs/sinks.md, identical on plain PostgreSQL and TimescaleDB.
--
-- readings: one column per field of the Reading Avro record, same names and order (timestamps as
-- timestamptz, doubles as double precision, ints as integer), then where the row came from in
-- Kafka. The key is the reading's identity, so a replayed or re-consumed record is an upsert,
-- never a duplicate.
CREATE TABLE readings (
    meter_id text NOT NULL,
    source text NOT NULL,
    ts timestamptz NOT NULL,
    ts_offset_minutes integer,
    received_at timestamptz NOT NULL,
    power_w double precision NOT NULL,
    power_production_w double precision,
    min_power_w double precision,
    average_power_w double precision,
    max_power_w double precision,
    min_power_production_w double precision,
    max_power_production_w double precision,
    accumulated_consumption_kwh double precision,
    accumulated_production_kwh double precision,
    accumulated_consumption_last_hour_kwh double precision,
    accumulated_production_last_hour_kwh double precision,
    accumulated_cost double precision,
    accumulated_reward double precision,
    last_meter_consumption_kwh double precision,
    last_meter_production_kwh double precision,
    power_reactive_kvar double precision,
    power_production_reactive_kvar double precision,
    power_factor double precision,
    voltage_l1_v double precision,
    voltage_l2_v double precision,
    voltage_l3_v double precision,
    current_l1_a double precision,
    current_l2_a double precision,
    current_l3_a double precision,
    currency text,
    signal_strength integer,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    PRIMARY KEY (meter_id, ts)
);

-- anomaly_scores: one row per scored window and model. The maps (features, attribution) and the
-- ModelInfo record are jsonb; top_feature (the largest attribution) is a column of its own so
-- dashboards can group by it without unpacking jsonb.
CREATE TABLE anomaly_scores (
    meter_id text NOT NULL,
    model_id text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    n_readings integer NOT NULL,
    features jsonb NOT NULL,
    score double precision NOT NULL,
    threshold double precision,
    is_anomaly boolean NOT NULL,
    attribution jsonb NOT NULL,
    top_feature text,
    model jsonb NOT NULL,
    scored_at timestamptz NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    PRIMARY KEY (meter_id, model_id, window_start)
);
