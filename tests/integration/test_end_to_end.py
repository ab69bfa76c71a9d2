"""End to end: simulator -> Kafka -> worker -> scores sink and lake sink -> PostgreSQL, lake, DuckDB.

Every reading is in the lake once and in ``readings`` once, every score in ``anomaly_scores``
once, and energy agrees three ways: the lake's daily kWh (DuckDB), a direct computation from the
simulator's stream, and the worker's window energies summed per day.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from minio import Minio

from meterstream.kafka.topics import ensure_topics
from meterstream.settings import LakeSettings, Settings, WorkerSettings
from schemas.topics import READINGS, SCORES
from streams.core.energy import daily_energy_kwh
from tests.integration.kafka_helpers import read_all
from tests.integration.sink_helpers import (
    lake_table,
    pg_count,
    pg_rows,
    start_sink,
    wait_for,
    wait_until_caught_up,
)
from tests.integration.worker_helpers import read_scores, start_worker

METERS = 3
DAY_US = 86_400_000_000
FEATURES = "power_mean_w,power_std_w,power_max_w,power_min_w,energy_wh,n_readings"


def _simulate(settings: Settings, tmp: Path) -> None:
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
    }
    args = [
        sys.executable, "-m", "meterstream.cli", "connector", "--source", "simulate",
        "--sim-meters", str(METERS), "--sim-start", "2026-01-05T23:00:00+00:00",
        "--sim-duration", "2h", "--sim-interval", "5s", "--sim-speed", "max", "--sim-seed", "11",
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_simulator_to_worker_to_both_sinks_and_duckdb(
    settings_factory: Callable[..., Settings],
    bucket_factory: Callable[[], str],
    minio_client: Minio,
    tmp_path: Path,
) -> None:
    from sinks.query.lake import open_lake, run_query

    base = settings_factory(postgres=True, s3=True)
    app_id = base.worker.app_id
    settings = base.model_copy(
        update={
            "lake": LakeSettings(bucket=bucket_factory(), spool_dir=tmp_path / "spool"),
            "worker": WorkerSettings(app_id=app_id, features=FEATURES),
        }
    )
    ensure_topics(settings)
    _simulate(settings, tmp_path)
    readings = read_all(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix + READINGS)
    assert len(readings) == METERS * 2 * 720

    lake_env = {
        "METERSTREAM_LAKE_BUCKET": settings.lake.bucket,
        "METERSTREAM_LAKE_SPOOL_DIR": str(settings.lake.spool_dir),
        "METERSTREAM_LAKE_GROUP_ID": f"{app_id}-lake",
        "METERSTREAM_LAKE_FILE_MAX_AGE": "2s",  # the worker's ticks close the last files
    }
    scores_env = {"METERSTREAM_SCORES_GROUP_ID": f"{app_id}-scores"}
    processes = [
        start_sink("lake", settings, tmp_path / "lake.log", **lake_env),
        start_sink("scores", settings, tmp_path / "scores.log", **scores_env),
        start_worker(
            settings,
            app_id=app_id,
            data_dir=tmp_path / "worker",
            log_path=tmp_path / "worker.log",
            METERSTREAM_WORKER_FEATURES=FEATURES,
        ),
    ]
    try:
        expected_windows = METERS * 120
        wait_for(
            lambda: (
                len({(s["meter_id"], s["window_start"]) for s in read_scores(settings, app_id)})
                >= expected_windows
            ),
            f"{expected_windows} scored windows",
            timeout_s=180,
        )
        wait_until_caught_up(settings, f"{app_id}-scores", [SCORES, READINGS])
        wait_for(
            lambda: lake_table(minio_client, settings.lake.bucket)[0].num_rows >= len(readings),
            "every reading in the lake",
        )
    finally:
        codes = [p.stop() for p in reversed(processes)]
    assert codes == [0, 0, 0], [p.output()[-2000:] for p in processes]

    # Exactly once: the lake, the readings table and the scores table.
    lake, _ = lake_table(minio_client, settings.lake.bucket)
    in_lake = Counter(
        zip(
            lake.column("kafka_partition").to_pylist(),
            lake.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert sorted(in_lake) == sorted((r.partition, r.offset) for r in readings)
    assert max(in_lake.values()) == 1
    assert pg_count(settings, "readings") == len(readings)
    published = read_scores(settings, app_id)
    by_key = {(s["meter_id"], s["model_id"], s["window_start"]): s for s in published}
    stored = pg_rows(
        settings,
        "SELECT meter_id, model_id, (extract(epoch FROM window_start) * 1e6)::bigint, score, "
        "is_anomaly, (features->>'energy_wh')::float8 FROM anomaly_scores",
    )
    assert len(stored) == len(by_key)
    for meter, model, start, value, flag, _energy in stored:
        source = by_key[(meter, model, int(start))]
        assert (value, flag) == (source["score"], source["is_anomaly"])

    # Energy, three ways, per meter and UTC day.
    con = open_lake(settings)
    rows = run_query(con, "SELECT meter_id, day, kwh FROM daily_energy").to_pylist()
    lake_kwh = {(r["meter_id"], r["day"].isoformat()): r["kwh"] for r in rows}
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in readings:
        series[r.value["meter_id"]].append((r.value["ts"], r.value["power_w"]))
    window_kwh: dict[tuple[str, str], float] = defaultdict(float)
    for meter, _model, start, _value, _flag, energy in stored:
        day = _day(int(start))
        window_kwh[(meter, day)] += energy / 1000
    for (meter, day), kwh in lake_kwh.items():
        points = sorted(series[meter])
        day_start = _day_start(day)
        direct = daily_energy_kwh(
            [t for t, _ in points],
            [p for _, p in points],
            day_start_us=day_start,
            day_end_us=day_start + DAY_US,
            size_us=60_000_000,
            max_gap_us=30_000_000,
        )
        assert kwh == pytest.approx(direct, rel=1e-9), (meter, day)
        assert window_kwh[(meter, day)] == pytest.approx(kwh, rel=1e-9), (meter, day)
    assert {d for _, d in lake_kwh} == {"2026-01-05", "2026-01-06"}


def _day(ts_us: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)).date().isoformat()


def _day_start(day: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000
