"""Rows and upsert SQL of the scores sink (no database)."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from sinks.scores.rows import READINGS, SCORES, Batch, score_row, top_feature
from sinks.scores.writer import create_staging_sql, upsert_sql
from tests.integration.sink_helpers import reading, score


def test_reading_rows_follow_the_avro_fields_then_the_kafka_coordinates() -> None:
    row = READINGS.to_row(reading("m1", 1_000_000, 512.5), 3, 77)
    names = READINGS.names
    assert names[:3] == ("meter_id", "source", "ts")
    assert names[-2:] == ("kafka_partition", "kafka_offset")
    values = dict(zip(names, row, strict=True))
    assert values["power_w"] == 512.5
    assert values["ts"] == 1_000_000
    assert values["power_factor"] is None  # absent optional field: null, not forward-filled
    assert (values["kafka_partition"], values["kafka_offset"]) == (3, 77)


def test_score_rows_keep_json_valid_when_features_are_not_finite() -> None:
    record = score("m1", 0, 1.0)
    record["features"]["power_std_w"] = math.nan
    record["attribution"] = {"a": math.inf, "b": 0.5}
    row = dict(zip(SCORES.names, score_row(record, 0, 1), strict=True))
    assert json.loads(row["features"])["power_std_w"] is None
    assert row["top_feature"] == "b"
    assert json.loads(row["model"])["num_trees"] == 30


def test_only_values_that_matter_are_compared_on_conflict() -> None:
    assert "received_at" not in READINGS.compared
    assert "power_w" in READINGS.compared
    assert "scored_at" not in SCORES.compared
    assert {"score", "threshold", "is_anomaly", "features"} <= set(SCORES.compared)
    text = upsert_sql(SCORES).as_string(None)
    assert 'ON CONFLICT ("meter_id", "model_id", "window_start") DO UPDATE' in text
    assert "IS DISTINCT FROM" in text
    assert "timestamptz 'epoch' + \"window_start\" * interval '1 microsecond'" in text
    assert "ON COMMIT DELETE ROWS" in create_staging_sql(READINGS).as_string(None)


@given(st.lists(st.tuples(st.sampled_from(["m1", "m2"]), st.integers(0, 5), st.floats(0, 9))))
def test_a_batch_holds_one_row_per_key_and_the_last_delivery_wins(
    deliveries: list[tuple[str, int, float]],
) -> None:
    batch = Batch(SCORES.key_positions)
    last: dict[tuple[str, int], float] = {}
    for offset, (meter, window, value) in enumerate(deliveries):
        batch.add(score_row(score(meter, window, value), 0, offset), window)
        last[(meter, window)] = value
    assert len(batch) == len(last)
    assert {(row[0], row[2]): row[6] for row in batch.rows()} == last
    assert batch.replaced == len(deliveries) - len(last)


def test_dropping_a_revoked_partition_keeps_the_others() -> None:
    batch = Batch(READINGS.key_positions)
    for partition in (0, 1, 2):
        batch.add(READINGS.to_row(reading(f"m{partition}", 5, 1.0), partition, 9), 5)
    assert batch.drop_partitions(READINGS.partition_position, {1}) == 1
    assert sorted(row[0] for row in batch.rows()) == ["m0", "m2"]


def test_top_feature_is_none_without_attribution() -> None:
    assert top_feature({}) is None
