"""The database layer's SQL, without a database: migration files, policies, path choice, refresh.

What the TimescaleDB path would run is checked here as text, because this machine (and most CI
runs without Docker) has no TimescaleDB; tests/integration/test_db_schema.py runs it for real
where the service provider offers a TimescaleDB image.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from meterstream.errors import ConfigError
from meterstream.settings import DbSettings
from schemas.loader import current_schema
from sinks.db.aggregates import (
    AGGREGATES,
    REFRESH_END_OFFSET,
    REFRESH_SCHEDULE,
    REFRESH_START_OFFSET,
    bucket_window,
    outside_refresh_window,
    refresh_statement,
)
from sinks.db.connect import redact
from sinks.db.errors import TimescaleUnavailableError
from sinks.db.files import SCHEMA_PATHS, MigrationFile, load_migrations, packaged_migrations
from sinks.db.init import check_role_names
from sinks.db.migrate import LOCK_KEY, choose_path
from sinks.db.policies import interval_text, plan_policies

TS = datetime(2024, 3, 10, 10, 15, tzinfo=UTC)

# docs/sinks.md, the anomaly_scores row of the table design.
ANOMALY_SCORES_COLUMNS = {
    "meter_id": "text NOT NULL",
    "model_id": "text NOT NULL",
    "window_start": "timestamptz NOT NULL",
    "window_end": "timestamptz NOT NULL",
    "n_readings": "integer NOT NULL",
    "features": "jsonb NOT NULL",
    "score": "double precision NOT NULL",
    "threshold": "double precision",
    "is_anomaly": "boolean NOT NULL",
    "attribution": "jsonb NOT NULL",
    "top_feature": "text",
    "model": "jsonb NOT NULL",
    "scored_at": "timestamptz NOT NULL",
    "kafka_partition": "integer NOT NULL",
    "kafka_offset": "bigint NOT NULL",
}

_AVRO_TO_SQL = {"string": "text", "double": "double precision", "int": "integer"}


def _sql_type(avro_type: object) -> str:
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return _sql_type(inner)
    if isinstance(avro_type, dict):
        assert avro_type.get("logicalType") == "timestamp-micros"
        return "timestamptz"
    return _AVRO_TO_SQL[str(avro_type)]


def _table_columns(text: str, table: str) -> dict[str, str]:
    """Column name to its declaration (type and NOT NULL) from a CREATE TABLE in a file."""
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", text, re.S)
    assert body is not None, table
    columns = {}
    for raw in body.group(1).splitlines():
        line = raw.strip().rstrip(",")
        if line and not line.startswith(("--", "PRIMARY KEY")):
            name, declaration = line.split(" ", 1)
            columns[name] = declaration
    return columns


def _output_columns(text: str, view: str) -> list[str]:
    """The output column names of a view's outermost SELECT list."""
    match = re.search(rf"VIEW {view}\b.*?\bAS\s+SELECT\b(.*?)\nFROM\b", text, re.S)
    assert match is not None, view
    items, depth, current = [], 0, ""
    for char in match.group(1):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.split()[-1] for item in (i.strip() for i in items)]


def _file(version: int, path: str) -> MigrationFile:
    migration = packaged_migrations()[version - 1]
    return migration.for_path(path)  # type: ignore[arg-type]


# -- migration files -----------------------------------------------------------------------


def test_packaged_migrations_are_numbered_and_cover_both_paths() -> None:
    migrations = packaged_migrations()
    assert [m.label for m in migrations] == ["0001_tables", "0002_time_layout", "0003_aggregates"]
    for migration in migrations:
        files = {migration.for_path(path).filename for path in SCHEMA_PATHS}
        assert all(name.startswith(migration.label) for name in files)
        assert len(migration.for_path("timescaledb").checksum) == 64


def test_readings_table_has_every_reading_field_in_avro_order() -> None:
    columns = _table_columns(_file(1, "postgresql").text, "readings")
    expected = {}
    for field in current_schema("Reading")["fields"]:
        nullable = isinstance(field["type"], list) and "null" in field["type"]
        expected[field["name"]] = _sql_type(field["type"]) + ("" if nullable else " NOT NULL")
    expected |= {"kafka_partition": "integer NOT NULL", "kafka_offset": "bigint NOT NULL"}
    assert list(columns) == list(expected)
    assert columns == expected
    assert "PRIMARY KEY (meter_id, ts)" in _file(1, "postgresql").text


def test_anomaly_scores_table_matches_the_design() -> None:
    text = _file(1, "postgresql").text
    assert _table_columns(text, "anomaly_scores") == ANOMALY_SCORES_COLUMNS
    assert "PRIMARY KEY (meter_id, model_id, window_start)" in text
    avro = {f["name"] for f in current_schema("AnomalyScore")["fields"]}
    assert avro <= set(ANOMALY_SCORES_COLUMNS)


@pytest.mark.parametrize("view", AGGREGATES)
def test_aggregates_have_the_same_columns_on_both_paths(view: str) -> None:
    plain = _output_columns(_file(3, "postgresql").text, view)
    timescale = _output_columns(_file(3, "timescaledb").text, view)
    assert plain == timescale
    expected = {
        "readings_hourly": [
            "meter_id",
            "bucket",
            "n_readings",
            "mean_power_w",
            "max_power_w",
            "min_power_w",
            "energy_kwh",
        ],
        "scores_hourly": [
            "meter_id",
            "model_id",
            "bucket",
            "n_windows",
            "mean_score",
            "max_score",
            "anomalies",
        ],
    }
    assert plain == expected[view]


def test_timescaledb_layout_statements() -> None:
    layout = _file(2, "timescaledb").text
    assert "create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day')" in layout
    assert re.search(
        r"create_hypertable\(\s*'anomaly_scores', 'window_start', "
        r"chunk_time_interval => INTERVAL '7 days'\s*\)",
        layout,
    )
    assert "timescaledb.compress_segmentby = 'meter_id'" in layout
    aggregates = _file(3, "timescaledb").text
    # Creating a continuous aggregate WITH DATA cannot run in the migration's transaction.
    assert aggregates.count("WITH NO DATA;") == aggregates.count("timescaledb.continuous") == 2
    assert "materialized_only = false" in aggregates
    # Continuous aggregates allow no window functions.
    assert " OVER " not in re.sub(r"--.*", "", aggregates)


def test_plain_path_has_brin_indexes_and_no_timescaledb_calls() -> None:
    layout, aggregates = _file(2, "postgresql").text, _file(3, "postgresql").text
    assert "USING brin (ts)" in layout
    assert "USING brin (window_start)" in layout
    code = re.sub(r"--.*", "", layout + aggregates)
    assert "timescaledb" not in code
    assert "time_bucket" not in code


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "", "0003_c.sql": ""}, "0002 is missing"),
        ({"0001_a.timescaledb.sql": ""}, "needs one file for each"),
        ({"0001_a.sql": "", "0001_a.postgresql.sql": ""}, "both a common and a per-path"),
        ({"0001_a.timescaledb.sql": "", "0001_b.postgresql.sql": ""}, "different names"),
        ({"1_a.sql": ""}, "is not named"),
        ({"0001_a.mysql.sql": ""}, "path must be one of"),
    ],
)
def test_malformed_migration_sets_are_refused(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_migrations(_write(tmp_path, files))


def test_checksum_ignores_line_endings_but_not_content() -> None:
    unix = MigrationFile(1, "a", None, "0001_a.sql", "SELECT 1;\nSELECT 2;\n")
    windows = MigrationFile(1, "a", None, "0001_a.sql", "SELECT 1;\r\nSELECT 2;\r\n")
    changed = MigrationFile(1, "a", None, "0001_a.sql", "SELECT 1;\nSELECT 3;\n")
    assert unix.checksum == windows.checksum != changed.checksum


# -- policies ------------------------------------------------------------------------------


def _statements(db: DbSettings, version: tuple[int, int, int]) -> dict[str, str]:
    return {p.name: p.definition() for p in plan_policies(db, version).policies}


def test_policies_judge_chunks_by_creation_time_on_2_13_and_later() -> None:
    plan = plan_policies(DbSettings(), (2, 17, 2))
    assert plan.warnings == ()
    assert _statements(DbSettings(), (2, 13, 0)) == {
        "readings retention": "SELECT add_retention_policy('readings', "
        "drop_created_before => INTERVAL '90 days')",
        "readings compression": "SELECT add_compression_policy('readings', "
        "compress_created_before => INTERVAL '7 days')",
        "anomaly_scores compression": "SELECT add_compression_policy('anomaly_scores', "
        "compress_created_before => INTERVAL '7 days')",
        "readings_hourly refresh": "SELECT add_continuous_aggregate_policy('readings_hourly', "
        "start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', "
        "schedule_interval => INTERVAL '15 minutes')",
        "scores_hourly refresh": "SELECT add_continuous_aggregate_policy('scores_hourly', "
        "start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', "
        "schedule_interval => INTERVAL '15 minutes')",
    }


def test_policies_fall_back_to_data_time_before_2_13_with_a_warning() -> None:
    plan = plan_policies(DbSettings(), (2, 12, 2))
    statements = {p.name: p.definition() for p in plan.policies}
    assert "drop_after => INTERVAL '90 days'" in statements["readings retention"]
    assert "compress_after => INTERVAL '7 days'" in statements["readings compression"]
    assert "created" not in " ".join(statements.values())
    (warning,) = plan.warnings
    assert "2.12.2" in warning
    assert "2.13.0" in warning
    assert "replayed" in warning


def test_policies_follow_the_settings() -> None:
    db = DbSettings(readings_retention="0", compress_after="36h")
    plan = plan_policies(db, (2, 17, 2))
    by_name = {p.name: p for p in plan.policies}
    retention = by_name["readings retention"]
    assert retention.add is None
    assert retention.definition() == "off"
    assert (
        retention.remove.as_string()
        == "SELECT remove_retention_policy('readings', if_exists => true)"
    )
    assert "INTERVAL '36 hours'" in by_name["anomaly_scores compression"].definition()
    assert by_name["scores_hourly refresh"].remove.as_string() == (
        "SELECT remove_continuous_aggregate_policy('scores_hourly', if_exists => true)"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90 * 86400, "90 days"),
        (86400, "1 day"),
        (7200, "2 hours"),
        (90 * 60, "90 minutes"),
        (45, "45 seconds"),
        (0.25, "0.25 seconds"),
    ],
)
def test_interval_text(seconds: float, text: str) -> None:
    assert interval_text(seconds) == text


# -- path choice ---------------------------------------------------------------------------

ON, OFF = DbSettings(timescale=True), DbSettings(timescale=False)


@pytest.mark.parametrize(
    ("db", "recorded", "installed", "available", "path", "warns"),
    [
        (ON, None, "2.17.2", "2.17.2", "timescaledb", False),
        (ON, None, None, None, "postgresql", False),
        (OFF, None, "2.17.2", "2.17.2", "postgresql", False),
        (OFF, None, None, "2.17.2", "postgresql", False),
        (ON, "postgresql", "2.17.2", "2.17.2", "postgresql", True),
        (OFF, "timescaledb", "2.17.2", "2.17.2", "timescaledb", True),
        (ON, "timescaledb", "2.11.0", "2.11.0", "timescaledb", False),
    ],
)
def test_choose_path(
    db: DbSettings,
    recorded: str | None,
    installed: str | None,
    available: str | None,
    path: str,
    warns: bool,
) -> None:
    chosen, warnings = choose_path(db, recorded, installed, available)  # type: ignore[arg-type]
    assert chosen == path
    assert bool(warnings) == warns


@pytest.mark.parametrize(
    ("recorded", "installed", "available", "message"),
    [
        (None, None, "2.17.2", "meterstream db init"),
        (None, "2.10.1", "2.10.1", "too old"),
        ("timescaledb", None, None, "no longer installed"),
    ],
)
def test_choose_path_refuses_an_unusable_timescaledb(
    recorded: str | None, installed: str | None, available: str | None, message: str
) -> None:
    with pytest.raises(TimescaleUnavailableError, match=message):
        choose_path(ON, recorded, installed, available)  # type: ignore[arg-type]


# -- aggregates refresh --------------------------------------------------------------------


def test_refresh_window_is_widened_to_whole_hours() -> None:
    start, end = bucket_window(TS, TS + timedelta(hours=2))
    assert start == datetime(2024, 3, 10, 10, tzinfo=UTC)
    assert end == datetime(2024, 3, 10, 13, tzinfo=UTC)
    # A point on a boundary still gets its own whole bucket.
    on_hour = datetime(2024, 3, 10, 10, tzinfo=UTC)
    assert bucket_window(on_hour, on_hour) == (on_hour, on_hour + timedelta(hours=1))
    old = datetime(1999, 12, 31, 23, 30, tzinfo=UTC)
    assert bucket_window(old, old)[0] == datetime(1999, 12, 31, 23, tzinfo=UTC)


def test_refresh_window_rejects_naive_and_reversed_bounds() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_window(TS.replace(tzinfo=None), TS)
    with pytest.raises(ValueError, match="before it starts"):
        bucket_window(TS, TS - timedelta(seconds=1))


def test_refresh_statement_text() -> None:
    start, end = bucket_window(TS, TS)
    assert refresh_statement("readings_hourly", start, end).as_string() == (
        "CALL refresh_continuous_aggregate('readings_hourly', "
        "'2024-03-10 10:00:00+00:00'::timestamptz, '2024-03-10 11:00:00+00:00'::timestamptz)"
    )


def test_outside_refresh_window_leaves_margin_for_the_schedule() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    edge = now - (REFRESH_START_OFFSET - REFRESH_SCHEDULE - timedelta(hours=1))
    assert not outside_refresh_window(edge, now)
    assert outside_refresh_window(edge - timedelta(seconds=1), now)
    assert not outside_refresh_window(now - REFRESH_END_OFFSET, now)


# -- roles, secrets, CLI -------------------------------------------------------------------


def test_role_names_must_differ_and_fit_postgres() -> None:
    with pytest.raises(ConfigError, match="different roles"):
        check_role_names(DbSettings(writer_role="same", reader_role="same"))
    with pytest.raises(ConfigError, match="63"):
        check_role_names(DbSettings(writer_role="w" * 64))
    check_role_names(DbSettings())


def test_role_names_are_validated_identifiers() -> None:
    with pytest.raises(ValueError, match="pattern"):
        DbSettings(reader_role='x"; DROP TABLE readings; --')


def test_redact_replaces_every_secret() -> None:
    assert redact("a pw1234 b pw1234", ["pw1234"]) == "a ********** b **********"


def test_lock_key_is_a_signed_bigint() -> None:
    assert 0 < LOCK_KEY < 2**63


def test_db_commands_have_help_without_a_database() -> None:
    from meterstream.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["db", "--help"])
    assert result.exit_code == 0
    for command in ("init", "migrate", "status"):
        assert command in result.output
    result = runner.invoke(main, ["db", "init", "--help"])
    assert result.exit_code == 0
    assert "--db-admin-dsn" in result.output
    assert "--postgres-dsn" in result.output
