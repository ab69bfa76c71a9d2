"""The scores sink against real Kafka and PostgreSQL: idempotent upserts, crashes, outages."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meterstream.kafka.topics import ensure_topics
from meterstream.settings import PostgresSettings, Settings
from schemas.topics import READINGS, SCORES
from tests.integration.sink_helpers import (
    T0_US,
    crash_at_fault_point,
    pg_count,
    pg_rows,
    produce_readings,
    produce_scores,
    readings_series,
    score,
    scores_series,
    start_sink,
    wait_for,
    wait_until_caught_up,
)
from tests.support.tcp_proxy import TcpProxy

METERS = 5
WINDOWS = 240  # 1,200 scores
PER_METER = 300  # 1,500 readings


@pytest.fixture
def pg_settings(settings_factory: Callable[..., Settings]) -> Settings:
    settings = settings_factory(postgres=True)
    ensure_topics(settings)
    return settings


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"METERSTREAM_SCORES_GROUP_ID": f"scores-{settings.kafka.topic_prefix}", **extra}


def _scores_in_db(settings: Settings) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    rows = pg_rows(
        settings,
        "SELECT meter_id, model_id, (extract(epoch FROM window_start) * 1e6)::bigint, score, "
        "threshold, is_anomaly, features, attribution, top_feature, n_readings "
        "FROM anomaly_scores",
    )
    return {(r[0], r[1], int(r[2])): r[3:] for r in rows}


def _expected(scores: list[dict[str, Any]]) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    from sinks.scores.rows import top_feature

    return {
        (s["meter_id"], s["model_id"], s["window_start"]): (
            s["score"],
            s["threshold"],
            s["is_anomaly"],
            s["features"],
            s["attribution"],
            top_feature(s["attribution"]),
            s["n_readings"],
        )
        for s in scores
    }


def _wait_for_counts(settings: Settings, scores: int, readings: int, timeout_s: float = 90) -> None:
    wait_for(
        lambda: (
            pg_count(settings, "anomaly_scores") >= scores
            and pg_count(settings, "readings") >= readings
        ),
        f"{scores} scores and {readings} readings in PostgreSQL",
        timeout_s=timeout_s,
    )


def test_scores_and_readings_are_upserted_once_and_sigterm_exits_0(
    pg_settings: Settings, tmp_path: Path
) -> None:
    scores = scores_series(METERS, WINDOWS)
    readings = readings_series(METERS, PER_METER)
    produce_scores(pg_settings, scores)
    # The connector may publish a reading twice after a reconnect: one row all the same.
    produce_readings(pg_settings, readings + readings[:40], ticks_every=100)
    sink = start_sink("scores", pg_settings, tmp_path / "sink.log", **_env(pg_settings))
    try:
        _wait_for_counts(pg_settings, len(scores), len(readings))
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
    assert pg_count(pg_settings, "anomaly_scores") == len(scores)
    assert pg_count(pg_settings, "readings") == len(readings)
    assert _scores_in_db(pg_settings) == _expected(scores)
    (stored,) = pg_rows(
        pg_settings,
        "SELECT power_w, voltage_l1_v, currency, ts_offset_minutes, "
        "(extract(epoch FROM ts) * 1e6)::bigint, kafka_offset IS NOT NULL "
        "FROM readings WHERE meter_id = 'm3' ORDER BY ts LIMIT 1",
    )
    first = next(r for r in readings if r["meter_id"] == "m3")
    assert stored == (first["power_w"], 231.5, "NOK", 60, first["ts"], True)
    assert "re-delivered with different values" not in sink.output()


def test_a_changed_redelivery_is_counted_and_the_newer_value_kept(
    pg_settings: Settings, tmp_path: Path
) -> None:
    produce_scores(pg_settings, [score("m1", T0_US, 1.5)])
    sink = start_sink("scores", pg_settings, tmp_path / "sink.log", **_env(pg_settings))
    try:
        wait_for(lambda: pg_count(pg_settings, "anomaly_scores") == 1, "the first score")
        # Same key twice in one batch (PostgreSQL would refuse that upsert), then a new value.
        produce_scores(
            pg_settings, [score("m1", T0_US, 1.5), score("m1", T0_US, 9.0), score("m2", T0_US, 1.0)]
        )
        wait_for(
            lambda: (
                pg_rows(pg_settings, "SELECT score FROM anomaly_scores WHERE meter_id = 'm1'")
                == [(9.0,)]
                and pg_count(pg_settings, "anomaly_scores") == 2
            ),
            "the newer value",
        )
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
    assert "1 anomaly_scores rows were re-delivered with different values" in sink.output()


@pytest.mark.parametrize("fault", ["mid_batch@2", "after_write_before_commit@2", "after_commit@3"])
def test_a_crash_at_a_fault_point_then_restart_writes_every_row_once_with_the_same_values(
    pg_settings: Settings, tmp_path: Path, fault: str
) -> None:
    scores = scores_series(METERS, WINDOWS)
    readings = readings_series(METERS, PER_METER)
    produce_scores(pg_settings, scores)
    produce_readings(pg_settings, readings)
    env = _env(pg_settings, METERSTREAM_SCORES_BATCH_ROWS="300")
    crash_at_fault_point("scores", pg_settings, tmp_path / "sink.log", fault, **env)
    restarted = start_sink("scores", pg_settings, tmp_path / "restarted.log", **env)
    try:
        wait_until_caught_up(pg_settings, env["METERSTREAM_SCORES_GROUP_ID"], [SCORES, READINGS])
    finally:
        assert restarted.stop() == 0, restarted.output()[-3000:]
    assert pg_count(pg_settings, "anomaly_scores") == len(scores)
    assert pg_count(pg_settings, "readings") == len(readings)
    assert _scores_in_db(pg_settings) == _expected(scores)
    assert "different values" not in restarted.output()


def test_postgres_cut_off_for_30_s_loses_nothing_and_the_sink_keeps_its_group(
    pg_settings: Settings, tmp_path: Path
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(pg_settings.postgres.dsn)
    proxy = TcpProxy(str(info.get("host", "127.0.0.1")), int(info.get("port", 5432)))
    proxied = pg_settings.model_copy(
        update={
            "postgres": PostgresSettings(
                dsn=make_conninfo(pg_settings.postgres.dsn, host="127.0.0.1", port=proxy.port),
                password=pg_settings.postgres.password,
            )
        }
    )
    first = scores_series(METERS, 40)
    produce_scores(proxied, first)
    sink = start_sink("scores", proxied, tmp_path / "sink.log", **_env(proxied))
    try:
        wait_for(lambda: pg_count(pg_settings, "anomaly_scores") == len(first), "the first batch")
        with proxy.outage():
            second = [
                score(f"m{m}", T0_US + (100 + w) * 60_000_000, 2.0)
                for w in range(60)
                for m in range(METERS)
            ]
            produce_scores(proxied, second)
            time.sleep(30)
            assert sink.process.poll() is None, "the sink died during the outage"
            assert pg_count(pg_settings, "anomaly_scores") == len(first)
        wait_for(
            lambda: pg_count(pg_settings, "anomaly_scores") == len(first) + len(second),
            "the rows written during the outage",
            timeout_s=60,
        )
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
        proxy.close()
    output = sink.output()
    assert "partitions paused" in output
    assert "resuming partitions" in output
    # It kept polling while paused, so the group never evicted it: one assignment only.
    assert output.count("scores sink: assigned") == 1, output[-3000:]


def test_a_poison_score_goes_to_the_dlq_and_the_sink_keeps_going(
    pg_settings: Settings, tmp_path: Path
) -> None:
    from meterstream.dlq import read_dead_letters

    produce_scores(pg_settings, scores_series(2, 10), raw=[b"not avro at all"])
    produce_scores(pg_settings, [score("m0", T0_US + 3_600_000_000, 1.0)])
    sink = start_sink("scores", pg_settings, tmp_path / "sink.log", **_env(pg_settings))
    try:
        wait_for(lambda: pg_count(pg_settings, "anomaly_scores") == 21, "the good scores")
    finally:
        assert sink.stop() == 0, sink.output()[-3000:]
    letters = list(read_dead_letters(pg_settings, 5))
    assert [letter.value for letter in letters] == [b"not avro at all"]
    assert letters[0].headers["meterstream-source-topic"].endswith("meter.anomaly-scores.v1")


def test_two_sinks_starting_together_share_the_work_without_colliding(
    pg_settings: Settings, tmp_path: Path
) -> None:
    scores = scores_series(METERS, WINDOWS)
    produce_scores(pg_settings, scores)
    env = _env(pg_settings, METERSTREAM_SCORES_READINGS="false")
    sinks = [start_sink("scores", pg_settings, tmp_path / f"sink{i}.log", **env) for i in range(2)]
    try:
        wait_for(lambda: pg_count(pg_settings, "anomaly_scores") == len(scores), "every score")
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.output()[-2000:] for s in sinks]
    assert _scores_in_db(pg_settings) == _expected(scores)
    assert pg_count(pg_settings, "readings") == 0
