-- Plain PostgreSQL: BRIN indexes on the time columns. Rows arrive roughly in time order, so a
-- BRIN index answers "the last N hours" for a few kilobytes; per-meter lookups use the primary
-- keys. There is no retention or compression on this path: delete old rows yourself if needed.
CREATE INDEX readings_ts_brin ON readings USING brin (ts);
CREATE INDEX anomaly_scores_window_start_brin ON anomaly_scores USING brin (window_start);
