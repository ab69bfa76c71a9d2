"""The lake's view SQL, the Trino DDL and the result table, without S3."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from meterstream.cli import main
from sinks.lake.schema import readings_schema
from sinks.query.lake import one_line
from sinks.query.render import render_table
from sinks.query.trino import init_sql, views_sql
from sinks.query.views import (
    derived_view_statements,
    empty_readings_raw_sql,
    lake_columns,
    raw_view_statement,
    readings_raw_sql,
    readings_sql,
)
from streams.core.energy import energy_by_window

ROOT = Path(__file__).resolve().parents[2]
S = 1_000_000
COLUMNS = lake_columns(readings_schema())


# -- Trino: the shipped files are the generated ones -------------------------------------------


def test_shipped_init_sql_is_generated_from_the_schema() -> None:
    assert (ROOT / "deploy" / "trino" / "init.sql").read_text() == init_sql()


def test_shipped_views_sql_is_generated() -> None:
    assert (ROOT / "deploy" / "trino" / "views.sql").read_text() == views_sql()


def test_init_sql_has_every_lake_column_then_the_partitions() -> None:
    table = init_sql().split("CREATE TABLE IF NOT EXISTS lake.meterstream.readings (")[1]
    names = re.findall(r'^\s+"(\w+)" ', table.split("\n)\n")[0], re.M)
    assert names == [*readings_schema().names, "date", "hour"]
    assert "partitioned_by = ARRAY['date', 'hour']" in table
    assert "sync_partition_metadata('meterstream', 'readings', 'ADD')" in init_sql()


def test_catalog_properties_keep_secrets_in_the_environment() -> None:
    props = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "trino" / "catalog" / "lake.properties")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    )
    assert props["connector.name"] == "hive"
    assert props["hive.metastore"] == "file"
    assert props["hive.metastore.catalog.dir"] == "s3://meterstream-lake/trino-metastore"
    assert props["fs.native-s3.enabled"] == "true"
    assert props["s3.path-style-access"] == "true"
    assert props["s3.aws-access-key"] == "${ENV:METERSTREAM_S3_ACCESS_KEY}"
    assert props["s3.aws-secret-key"] == "${ENV:METERSTREAM_S3_SECRET_KEY}"


# -- DuckDB views over a local table -----------------------------------------------------------


def test_readings_raw_reads_by_name_with_typed_partitions() -> None:
    sql = readings_raw_sql("s3://b/readings/*/*/*.parquet")
    assert "union_by_name = true" in sql
    assert "hive_types = {'date': DATE, 'hour': INTEGER}" in sql


def test_empty_readings_raw_has_the_file_columns_and_partitions() -> None:
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE {empty_readings_raw_sql(COLUMNS)}").fetchall()
    assert [r[0] for r in described] == [*readings_schema().names, "date", "hour"]
    assert con.execute(f"SELECT count(*) FROM ({empty_readings_raw_sql(COLUMNS)})").fetchone() == (
        0,
    )


def test_readings_fills_a_column_no_file_has_yet_and_keeps_unknown_ones() -> None:
    present = [c.name for c in COLUMNS if c.name != "signal_strength"] + ["future_field"]
    sql = readings_sql(COLUMNS, present)
    assert 'CAST(NULL AS INTEGER) AS "signal_strength"' in sql
    assert sql.index('"future_field"') > sql.index('"kafka_timestamp"')


def _local_lake(rows: list[dict[str, object]]) -> duckdb.DuckDBPyConnection:
    """The derived views over an in-memory readings_raw (what S3 would give)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    schema = readings_schema()
    full = [{**dict.fromkeys(schema.names), **r} for r in rows]
    table = pa.Table.from_pylist(full, schema=schema)
    con.register("files", table)
    con.execute(raw_view_statement(COLUMNS, None))  # proves the empty form binds
    con.execute(
        "CREATE OR REPLACE VIEW readings_raw AS SELECT *, CAST(ts AS DATE) AS date, "
        "CAST(hour(ts) AS INTEGER) AS hour FROM files"
    )
    present = [r[0] for r in con.execute("DESCRIBE readings_raw").fetchall()]
    for statement in derived_view_statements(COLUMNS, present, size_us=60 * S, max_gap_us=30 * S):
        con.execute(statement)
    return con


def test_window_and_daily_energy_follow_the_rule() -> None:
    start = datetime(2024, 3, 4, 23, 58, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for i in range(40):
        ts = start + timedelta(seconds=7 * i)
        rows.append(_row("m", ts, 100.0 + 13 * i, 0, i))
    rows.append(_row("m", start + timedelta(seconds=7), 1e9, 1, 0))  # another partition: loses
    con = _local_lake(rows)
    got = con.execute("SELECT epoch_us(window_start), energy_wh FROM window_energy ORDER BY 1")
    base = int(start.timestamp()) * S
    ts_us = [base + 7 * i * S for i in range(40)]
    expected = energy_by_window(ts_us, [100.0 + 13 * i for i in range(40)], 60 * S, 30 * S)
    assert dict(got.fetchall()) == pytest.approx(expected, rel=1e-12)
    daily = con.execute("SELECT day::VARCHAR, kwh FROM daily_energy ORDER BY day").fetchall()
    assert [d for d, _ in daily] == ["2024-03-04", "2024-03-05"]
    assert sum(k for _, k in daily) == pytest.approx(sum(expected.values()) / 1000, rel=1e-12)
    assert con.execute("SELECT count(*) FROM readings").fetchone() == (40,)


def _row(meter: str, ts: datetime, power: float, partition: int, offset: int) -> dict[str, object]:
    return {
        "meter_id": meter,
        "source": "test",
        "ts": ts,
        "received_at": ts,
        "power_w": power,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": ts,
    }


# -- output ------------------------------------------------------------------------------------


def test_render_table_aligns_and_counts() -> None:
    table = pa.table({"name": ["a", "longer", None], "kwh": [1.5, 22.25, None]})
    lines = render_table(table, limit=2).splitlines()
    assert lines == [
        "name      kwh",
        "------  -----",
        "a         1.5",
        "longer  22.25",
        "(2 of 3 rows shown; --limit 0 shows all, --csv or --parquet writes all)",
    ]
    assert render_table(table, limit=0).splitlines()[-2:] == ["NULL     NULL", "(3 rows)"]
    assert render_table(pa.table({}), limit=5) == "(no rows)"


def test_duckdb_errors_become_one_line() -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as info:
        con.execute("SELECT nope FROM range(3)")
    assert "\n" in str(info.value)
    line = one_line(info.value)
    assert "\n" not in line
    assert "nope" in line
    assert "^" not in line


def test_query_needs_sql_or_list_views() -> None:
    result = CliRunner().invoke(main, ["query"])
    assert result.exit_code == 2
    assert "give SQL to run, or --list-views" in result.output
    result = CliRunner().invoke(main, ["query", "--csv", "a", "--parquet", "b", "SELECT 1"])
    assert result.exit_code == 2
