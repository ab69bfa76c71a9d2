"""`meterstream query` and the lake's DuckDB views, against real MinIO.

One module-wide lake: two meters, 30 hours of readings every 30 s, one file per hour and
partition, plus what a real lake holds besides: an older file without ``signal_strength``, a
redelivery of five readings at later offsets (with a different power, which must lose), and
a compaction leftover (the same rows, same offsets, under a second key).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from minio import Minio

from meterstream.cli import main
from meterstream.settings import Settings
from sinks.lake.schema import readings_schema
from sinks.query import lake as lake_module
from sinks.query.examples import (
    AROUND_ANOMALY,
    DAILY_KWH,
    EXAMPLES,
    NIGHT_BASE_LOAD,
    TOP_POWER_HOURS,
)
from sinks.query.lake import LakeQueryError, httpfs_extension_dir, open_lake, run_query
from sinks.query.views import VIEW_NAMES
from streams.core.energy import daily_energy_kwh, energy_by_window
from tests.services.endpoints import S3Endpoint
from tests.support.lake_files import Row, lake_settings, put_file, put_lake, reading_row

S = 1_000_000
START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday; Oslo is UTC+1 in March
HOURS = 30
STEP = timedelta(seconds=30)
ANOMALY = datetime(2024, 3, 4, 12, tzinfo=UTC)
METERS = {"home-1": (0, 200.0), "home-2": (1, 350.0)}  # partition, night base load (W)
WINDOW_S, MAX_GAP_S = 60.0, 30.0
OLD_FILE_HOUR = 0  # home-2's first hour is written without signal_strength
COMPACTED_HOUR = 3  # home-2's hour 3 is present twice (compaction leftover)
REDELIVERED = [datetime(2024, 3, 4, 10, 0, tzinfo=UTC) + i * STEP for i in range(5)]

ROOT = Path(__file__).resolve().parents[2]


def _power(meter: str, base: float, ts: datetime, i: int) -> float:
    if meter == "home-1" and ANOMALY <= ts < ANOMALY + timedelta(minutes=5):
        return 9000.0
    day = 600.0 if 6 <= ts.hour < 20 else 0.0
    return base + day + (i % 7) * 10.0


def _scenario() -> tuple[list[Row], list[Row], list[Row]]:
    """(rows of the regular files, the redelivered rows, all rows in arrival order)."""
    rows: list[Row] = []
    next_offset = {p: 0 for p, _ in METERS.values()}
    for meter, (partition, base) in METERS.items():
        for i in range(HOURS * 3600 // 30):
            ts = START + i * STEP
            power = _power(meter, base, ts, i)
            rows.append(
                reading_row(
                    meter,
                    ts,
                    power,
                    partition=partition,
                    offset=next_offset[partition],
                    voltage_l1_v=230.0,
                    current_l1_a=round(power / 230.0, 3),
                    signal_strength=70,
                )
            )
            next_offset[partition] += 1
    redelivered = []
    for ts in REDELIVERED:  # the connector sent these again; the first arrival must win
        redelivered.append(reading_row("home-1", ts, 99_999.0, partition=0, offset=next_offset[0]))
        next_offset[0] += 1
    return rows, redelivered, rows + redelivered


ROWS, REDELIVERED_ROWS, ALL_ROWS = _scenario()


def _is_old(row: Row) -> bool:
    return row["meter_id"] == "home-2" and row["ts"] < START + timedelta(hours=OLD_FILE_HOUR + 1)


def _compacted(row: Row) -> bool:
    return row["meter_id"] == "home-2" and row["ts"].hour == COMPACTED_HOUR and row["ts"].day == 4


@pytest.fixture(scope="module")
def lake_bucket(s3_service: S3Endpoint) -> Iterator[tuple[Minio, str]]:
    client = Minio(
        s3_service.host,
        access_key=s3_service.access_key,
        secret_key=s3_service.secret_key,
        secure=s3_service.endpoint.startswith("https://"),
    )
    bucket = f"test-query-{uuid.uuid4().hex[:10]}"
    client.make_bucket(bucket)
    put_lake(client, bucket, [r for r in ROWS if not _is_old(r)])
    put_lake(client, bucket, [r for r in ROWS if _is_old(r)], drop=("signal_strength",))
    put_file(client, bucket, REDELIVERED_ROWS)
    leftover = [r for r in ROWS if _compacted(r)]
    put_file(
        client,
        bucket,
        leftover,
        key=f"readings/date=2024-03-04/hour={COMPACTED_HOUR:02d}/compacted-0001.parquet",
    )
    yield client, bucket
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, obj.object_name or "")
    client.remove_bucket(bucket)


def _settings(s3_service: S3Endpoint, bucket: str) -> Settings:
    return lake_settings(
        s3_service.endpoint,
        s3_service.access_key,
        s3_service.secret_key,
        bucket,
        window_s=WINDOW_S,
        max_gap_s=MAX_GAP_S,
    )


@pytest.fixture(scope="module")
def con(
    s3_service: S3Endpoint, lake_bucket: tuple[Minio, str]
) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = open_lake(_settings(s3_service, lake_bucket[1]))
    yield connection
    connection.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    table = run_query(con, sql)
    return table.to_pylist()  # type: ignore[no-any-return]


def _us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _first_arrivals() -> dict[tuple[str, datetime], Row]:
    first: dict[tuple[str, datetime], Row] = {}
    for row in sorted(ALL_ROWS, key=lambda r: (r["kafka_partition"], r["kafka_offset"])):
        first.setdefault((row["meter_id"], row["ts"]), row)
    return first


# -- the views ---------------------------------------------------------------------------------


def test_readings_raw_holds_every_file_row_with_partition_columns(con) -> None:
    n_leftover = sum(_compacted(r) for r in ROWS)
    (count,) = _rows(con, "SELECT count(*) AS n FROM readings_raw")[0].values()
    assert count == len(ALL_ROWS) + n_leftover
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE readings_raw)").fetchall()
    )
    assert types["date"] == "DATE"
    assert types["hour"] == "INTEGER"
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert set(readings_schema().names) <= set(types)
    by_hour = _rows(
        con,
        "SELECT date, hour, count(*) AS n FROM readings_raw WHERE meter_id = 'home-1' "
        "AND NOT power_w = 99999 GROUP BY ALL ORDER BY ALL",
    )
    assert by_hour[0] == {"date": date(2024, 3, 4), "hour": 0, "n": 120}
    assert len(by_hour) == HOURS


def test_union_by_name_reads_a_file_without_a_newer_column(con) -> None:
    rows = _rows(
        con,
        "SELECT hour, count(*) AS n, count(signal_strength) AS with_signal FROM readings "
        "WHERE meter_id = 'home-2' AND date = DATE '2024-03-04' AND hour <= 1 GROUP BY ALL "
        "ORDER BY hour",
    )
    assert rows == [
        {"hour": 0, "n": 120, "with_signal": 0},
        {"hour": 1, "n": 120, "with_signal": 120},
    ]


def test_readings_keeps_one_row_per_meter_and_ts_the_first_arrival(con) -> None:
    expected = _first_arrivals()
    (count,) = _rows(con, "SELECT count(*) AS n FROM readings")[0].values()
    assert count == len(expected) == len(ROWS)
    redelivered = _rows(
        con,
        "SELECT ts, power_w, kafka_offset FROM readings WHERE meter_id = 'home-1' "
        "AND ts BETWEEN TIMESTAMPTZ '2024-03-04 10:00:00+00' AND "
        "TIMESTAMPTZ '2024-03-04 10:02:00+00' ORDER BY ts",
    )
    assert [r["ts"] for r in redelivered] == REDELIVERED
    for got in redelivered:
        want = expected[("home-1", got["ts"])]
        assert (got["power_w"], got["kafka_offset"]) == (want["power_w"], want["kafka_offset"])
        assert got["power_w"] != 99_999.0
    dupes = _rows(
        con,
        "SELECT count(*) AS n FROM (SELECT meter_id, ts FROM readings GROUP BY ALL HAVING count(*) > 1)",
    )
    assert dupes == [{"n": 0}]


def test_readings_columns_are_the_schema_then_date_and_hour(con) -> None:
    names = [r[0] for r in con.execute("DESCRIBE readings").fetchall()]
    assert names == [*readings_schema().names, "date", "hour"]


def test_a_partition_filter_reads_fewer_files(con) -> None:
    # date/hour sit in the window's PARTITION BY so the filter reaches the scan; the plan
    # then names fewer files than the lake holds.
    plan = "\n".join(
        str(r[1])
        for r in con.execute(
            "EXPLAIN ANALYZE SELECT count(*) FROM readings WHERE date = DATE '2024-03-05'"
        ).fetchall()
    )
    match = re.search(r"Scanning Files:\s*(\d+)/(\d+)", plan)
    assert match, plan
    scanned, total = map(int, match.groups())
    assert scanned < total


def test_window_energy_matches_the_python_rule(con) -> None:
    got = {
        (r["meter_id"], r["window_start"]): r["energy_wh"]
        for r in _rows(con, "SELECT * FROM window_energy")
    }
    expected: dict[tuple[str, datetime], float] = {}
    for meter in METERS:
        mine = sorted(
            (r for r in ALL_ROWS if r["meter_id"] == meter),
            key=lambda r: (r["kafka_partition"], r["kafka_offset"]),
        )
        ts_us = [_us(r["ts"]) for r in mine]
        for start, wh in energy_by_window(
            ts_us, [r["power_w"] for r in mine], int(WINDOW_S * S), int(MAX_GAP_S * S)
        ).items():
            expected[(meter, datetime.fromtimestamp(start / S, UTC))] = wh
    assert got.keys() == expected.keys()
    for key, wh in expected.items():
        assert got[key] == pytest.approx(wh, rel=1e-12), key
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE window_energy)").fetchall()
    )
    assert types == {
        "meter_id": "VARCHAR",
        "window_start": "TIMESTAMP WITH TIME ZONE",
        "energy_wh": "DOUBLE",
    }


def test_daily_energy_matches_daily_energy_kwh(con) -> None:
    got = {(r["meter_id"], r["day"]): r["kwh"] for r in _rows(con, "SELECT * FROM daily_energy")}
    assert set(got) == {(m, d) for m in METERS for d in (date(2024, 3, 4), date(2024, 3, 5))}
    for (meter, day), kwh in got.items():
        first = sorted(
            (r for r in ALL_ROWS if r["meter_id"] == meter),
            key=lambda r: (r["kafka_partition"], r["kafka_offset"]),
        )
        day_start = _us(datetime(day.year, day.month, day.day, tzinfo=UTC))
        want = daily_energy_kwh(
            [_us(r["ts"]) for r in first],
            [r["power_w"] for r in first],
            day_start_us=day_start,
            day_end_us=day_start + 86_400 * S,
            size_us=int(WINDOW_S * S),
            max_gap_us=int(MAX_GAP_S * S),
        )
        assert kwh == pytest.approx(want, rel=1e-12), (meter, day)
    # A plausibility anchor independent of both implementations: home-2's first day is 10 h
    # at 350 W + 14 h at 950 W, plus the 0..60 W ripple (30 W on average).
    assert got[("home-2", date(2024, 3, 4))] == pytest.approx(
        (10 * 350 + 14 * 950 + 24 * 30) / 1000, rel=1e-3
    )


def test_timezone_setting_does_not_shift_the_windows(con) -> None:
    before = _rows(con, "SELECT min(window_start) AS w FROM window_energy")
    run_query(con, "SET TimeZone = 'America/New_York'")
    try:
        after = _rows(con, "SELECT min(window_start) AS w FROM window_energy")
        days = _rows(con, "SELECT DISTINCT day FROM daily_energy ORDER BY day")
    finally:
        run_query(con, "SET TimeZone = 'UTC'")
    assert before == after == [{"w": START}]
    assert [r["day"] for r in days] == [date(2024, 3, 4), date(2024, 3, 5)]


def test_sql_errors_are_one_line(con) -> None:
    with pytest.raises(LakeQueryError) as info:
        run_query(con, "SELECT nope FROM readings")
    assert "\n" not in str(info.value)
    assert "nope" in str(info.value)


# -- the documented examples -------------------------------------------------------------------


def test_every_example_is_in_the_docs_verbatim() -> None:
    text = (ROOT / "docs" / "query.md").read_text()
    for example in EXAMPLES:
        assert f"```sql\n{example.sql}\n```" in text, example.name


def test_example_daily_kwh(con) -> None:
    rows = _rows(con, DAILY_KWH.sql)
    assert [(r["meter_id"], r["day"]) for r in rows] == [
        (m, d) for m in METERS for d in (date(2024, 3, 4), date(2024, 3, 5))
    ]
    exact = {(r["meter_id"], r["day"]): r["kwh"] for r in _rows(con, "FROM daily_energy")}
    for r in rows:
        assert r["kwh"] == round(exact[(r["meter_id"], r["day"])], 3)


def test_example_night_base_load(con) -> None:
    oslo = ZoneInfo("Europe/Oslo")
    hourly: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    for row in _first_arrivals().values():
        local = row["ts"].astimezone(oslo).replace(minute=0, second=0, microsecond=0)
        hourly[(row["meter_id"], local)].append(row["power_w"])
    nights: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (meter, local), powers in hourly.items():
        if 1 <= local.hour <= 4:
            iso = local.isocalendar()
            nights[(meter, f"{iso.year}-W{iso.week:02d}")].append(sum(powers) / len(powers))
    rows = _rows(con, NIGHT_BASE_LOAD.sql)
    assert [(r["meter_id"], r["iso_week"]) for r in rows] == sorted(nights)
    for r in rows:
        means = sorted(nights[(r["meter_id"], r["iso_week"])])
        # DuckDB's quantile_cont interpolates like statistics' "inclusive" method.
        p10 = quantiles(means, n=10, method="inclusive")[0]
        assert r["base_load_w"] == round(p10, 1)
        assert r["min_hour_w"] == round(means[0], 1)
        assert r["night_hours"] == len(means)  # 01-05 local on 4 and 5 March: 8 hours
    assert [r["night_hours"] for r in rows] == [8, 8]
    assert METERS["home-1"][1] <= rows[0]["min_hour_w"] < 300


def test_example_top_power_hours(con) -> None:
    rows = _rows(con, TOP_POWER_HOURS.sql)
    assert len(rows) == 10
    top = rows[0]
    assert (top["meter_id"], top["hour_start"]) == ("home-1", ANOMALY)
    # 5 minutes at 9 kW, 55 at 800..860 W
    assert 1.4 < top["mean_kw"] < 1.6
    assert [r["mean_kw"] for r in rows] == sorted((r["mean_kw"] for r in rows), reverse=True)


def test_example_around_anomaly(con) -> None:
    rows = _rows(con, AROUND_ANOMALY.sql)
    expected = sorted(
        (
            r
            for r in ROWS
            if r["meter_id"] == "home-1" and abs(r["ts"] - ANOMALY) <= timedelta(minutes=10)
        ),
        key=lambda r: r["ts"],
    )
    assert [r["ts"] for r in rows] == [r["ts"] for r in expected]
    assert len(rows) == 41  # every 30 s, both ends included
    assert [r["power_w"] for r in rows] == [r["power_w"] for r in expected]
    assert sum(r["power_w"] == 9000.0 for r in rows) == 10


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def invoke(s3_service: S3Endpoint, lake_bucket: tuple[Minio, str]) -> Callable[..., Any]:
    def run(*args: str, bucket: str | None = None) -> Any:
        env = {
            "METERSTREAM_S3_ENDPOINT": s3_service.endpoint,
            "METERSTREAM_S3_ACCESS_KEY": s3_service.access_key,
            "METERSTREAM_S3_SECRET_KEY": s3_service.secret_key,
            "METERSTREAM_LAKE_BUCKET": bucket or lake_bucket[1],
            "METERSTREAM_WORKER_WINDOW": str(WINDOW_S),
            "METERSTREAM_WORKER_ENERGY_MAX_GAP": str(MAX_GAP_S),
        }
        return CliRunner().invoke(main, ["query", *args], env=env)

    return run


def test_cli_prints_an_aligned_table_with_a_row_count(invoke, s3_service) -> None:
    result = invoke("SELECT meter_id, day, round(kwh, 3) AS kwh FROM daily_energy ORDER BY ALL")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["meter_id", "day", "kwh"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("home-1    2024-03-04")
    assert len({len(line) for line in lines[:6]}) == 1  # aligned: every line as wide
    assert lines[-1] == "(4 rows)"
    assert s3_service.secret_key not in result.output


def test_cli_caps_the_rows_it_prints(invoke) -> None:
    result = invoke("SELECT * FROM window_energy ORDER BY ALL")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 50 + 1
    n_windows = len(METERS) * HOURS * 60
    assert lines[-1].startswith(f"(50 of {n_windows} rows shown")
    result = invoke("--limit", "3", "SELECT * FROM window_energy ORDER BY ALL")
    assert len(result.stdout.splitlines()) == 2 + 3 + 1


def test_cli_writes_csv_to_a_file_and_to_stdout(invoke, tmp_path: Path) -> None:
    sql = "SELECT meter_id, ts, power_w FROM readings WHERE date = DATE '2024-03-05' ORDER BY ALL"
    out = tmp_path / "r.csv"
    result = invoke("--csv", str(out), sql)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(METERS) * 6 * 120  # 00:00-06:00 on 5 March
    assert rows[0]["meter_id"] == "home-1"
    assert f"wrote {len(rows)} rows to {out}" in result.stderr
    result = invoke("--csv", "-", sql)
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(result.stdout))) == rows


def test_cli_writes_parquet(invoke, tmp_path: Path) -> None:
    out = tmp_path / "daily.parquet"
    result = invoke("--parquet", str(out), "SELECT * FROM daily_energy ORDER BY ALL")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["meter_id", "day", "kwh"]
    assert table.num_rows == 4


def test_cli_lists_the_views(invoke) -> None:
    result = invoke("--list-views")
    assert result.exit_code == 0, result.output
    for name in VIEW_NAMES:
        assert f"{name}:\n" in result.stdout
    assert re.search(r"^  window_start\s+TIMESTAMP WITH TIME ZONE$", result.stdout, re.M)


def test_cli_sql_error_is_one_error_line(invoke, s3_service) -> None:
    result = invoke("SELECT * FROM no_such_view")
    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ")
    assert "no_such_view" in err[0]
    assert s3_service.secret_key not in result.output


def test_cli_wrong_secret_fails_without_printing_it(s3_service) -> None:
    result = CliRunner().invoke(
        main,
        ["query", "SELECT 1"],
        env={
            "METERSTREAM_S3_ENDPOINT": s3_service.endpoint,
            "METERSTREAM_S3_ACCESS_KEY": s3_service.access_key,
            "METERSTREAM_S3_SECRET_KEY": "not-the-secret-x9",
            "METERSTREAM_LAKE_BUCKET": "meterstream-lake",
        },
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "not-the-secret-x9" not in result.output


# -- an empty lake, and offline ----------------------------------------------------------------


def test_an_empty_lake_gives_empty_views_with_the_same_columns(
    s3_service, con, bucket_factory
) -> None:
    empty = open_lake(_settings(s3_service, bucket_factory()))
    try:
        for name in VIEW_NAMES:
            assert run_query(empty, f"SELECT count(*) AS n FROM {name}").to_pylist() == [{"n": 0}]
            assert (
                empty.execute(f"DESCRIBE {name}").fetchall()
                == con.execute(f"DESCRIBE {name}").fetchall()
            )
    finally:
        empty.close()


def test_cli_on_an_empty_lake(invoke, bucket_factory) -> None:
    result = invoke("SELECT * FROM daily_energy", bucket=bucket_factory())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["meter_id  day  kwh", "--------  ---  ---", "(0 rows)"]


def test_httpfs_loads_from_the_wheel_and_nothing_is_downloaded(
    s3_service, lake_bucket, monkeypatch
) -> None:
    # A repository that cannot answer: any attempt to fetch an extension would fail loudly.
    offline = lake_module.offline_config

    def no_repository() -> dict[str, lake_module.ConfigValue]:
        return {**offline(), "custom_extension_repository": "http://127.0.0.1:9/nowhere"}

    monkeypatch.setattr(lake_module, "offline_config", no_repository)
    connection = open_lake(_settings(s3_service, lake_bucket[1]))
    try:
        settings = dict(
            connection.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('autoinstall_known_extensions', 'autoload_known_extensions', "
                "'extension_directory')"
            ).fetchall()
        )
        assert settings == {
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "extension_directory": str(httpfs_extension_dir()),
        }
        (loaded, path) = connection.execute(
            "SELECT loaded, install_path FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
        ).fetchone() or (False, "")
        assert loaded
        assert Path(path).is_relative_to(httpfs_extension_dir())
        assert run_query(connection, "SELECT count(*) AS n FROM daily_energy").to_pylist() == [
            {"n": 4}
        ]
        # The secret is in DuckDB's secret manager, redacted when listed.
        secrets = connection.execute("SELECT secret_string FROM duckdb_secrets()").fetchall()
        assert secrets
        assert all(s3_service.secret_key not in str(s) for s in secrets)
    finally:
        connection.close()
