"""The schema layer against a real PostgreSQL: migrations, locking, roles, aggregates, the CLI.

Each test gets a fresh database (``pg_db``). Roles are cluster-wide, so tests that create them
use names made from ``unique_id`` and drop them afterwards. Plain-path tests pin
``timescale=False``, so they run the same way on a TimescaleDB server; the TimescaleDB tests
skip unless the provider runs one (``pg_db.timescaledb``, the Docker image).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.rows import dict_row

from meterstream.cli import main
from meterstream.settings import DbSettings
from schemas.loader import current_schema
from sinks.db.aggregates import refresh_aggregates
from sinks.db.errors import ChecksumMismatchError, DbError, MigrationError
from sinks.db.files import Migration, MigrationFile, packaged_migrations
from sinks.db.migrate import MIGRATIONS_TABLE, migrate, status
from streams.core.energy import window_energy_wh
from tests.services.endpoints import PostgresEndpoint

PLAIN = DbSettings(timescale=False)
LABELS = [m.label for m in packaged_migrations()]
HOUR = timedelta(hours=1)
T0 = datetime(2024, 3, 10, 10, tzinfo=UTC)
S = 1_000_000  # microseconds per second, for window_energy_wh


def _connect(pg: PostgresEndpoint, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(pg.dsn, password=pg.password, **kwargs)


@pytest.fixture
def conn(pg_db: PostgresEndpoint) -> Iterator[psycopg.Connection[Any]]:
    with _connect(pg_db) as connection:
        yield connection


def _as_user(pg: PostgresEndpoint, user: str) -> str:
    """pg's DSN with another user name (the DSN is postgresql://user@host:port/db)."""
    scheme, rest = pg.dsn.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@dataclass(frozen=True)
class Roles:
    writer: str
    reader: str
    writer_password: str
    reader_password: str


@pytest.fixture
def roles(pg_db: PostgresEndpoint, unique_id: str) -> Iterator[Roles]:
    made = Roles(f"w_{unique_id}", f"r_{unique_id}", f"wpw-{unique_id}", f"rpw-{unique_id}")
    yield made
    # DROP OWNED in the test database drops what the roles own there and revokes their grants
    # (also those on the database itself); then the cluster-wide roles can go.
    with _connect(pg_db, autocommit=True) as admin:
        for role in (made.writer, made.reader):
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(f'DROP OWNED BY "{role}" CASCADE')
                admin.execute(f'DROP ROLE "{role}"')


def _env(pg: PostgresEndpoint, roles: Roles, **extra: str) -> dict[str, str]:
    return {
        "METERSTREAM_DB_ADMIN_DSN": pg.dsn,
        "METERSTREAM_DB_ADMIN_PASSWORD": pg.password,
        "METERSTREAM_POSTGRES_DSN": _as_user(pg, roles.writer),
        "METERSTREAM_POSTGRES_PASSWORD": roles.writer_password,
        "METERSTREAM_DB_WRITER_ROLE": roles.writer,
        "METERSTREAM_DB_READER_ROLE": roles.reader,
        "METERSTREAM_DB_READER_PASSWORD": roles.reader_password,
        **extra,
    }


def _run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


def _insert_reading(
    conn: psycopg.Connection[Any], meter: str, ts: datetime, power: float, offset: int = 0
) -> None:
    conn.execute(
        "INSERT INTO readings (meter_id, source, ts, received_at, power_w, kafka_partition, "
        "kafka_offset) VALUES (%s, 'test', %s, %s, %s, 0, %s)",
        (meter, ts, ts, power, offset),
    )


def _insert_score(
    conn: psycopg.Connection[Any], meter: str, start: datetime, score: float, anomaly: bool
) -> None:
    conn.execute(
        "INSERT INTO anomaly_scores (meter_id, model_id, window_start, window_end, n_readings, "
        "features, score, threshold, is_anomaly, attribution, top_feature, model, scored_at, "
        "kafka_partition, kafka_offset) VALUES (%s, 'm1', %s, %s, 30, '{}', %s, 1.0, %s, '{}', "
        "NULL, '{}', %s, 0, 0)",
        (meter, start, start + timedelta(minutes=1), score, anomaly, start),
    )


# -- migrations ----------------------------------------------------------------------------


def test_migrate_applies_everything_and_records_the_path(conn: psycopg.Connection[Any]) -> None:
    report = migrate(conn, PLAIN)
    assert report.applied == LABELS
    assert report.path == "postgresql"
    assert report.already_applied == []
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    rows = conn.execute(
        f"SELECT version, name, checksum, path FROM {MIGRATIONS_TABLE} ORDER BY version"
    ).fetchall()
    expected = [
        (m.version, m.name, m.for_path("postgresql").checksum, "postgresql")
        for m in packaged_migrations()
    ]
    assert rows == expected


def test_migrate_twice_is_a_no_op(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, PLAIN)
    before = conn.execute(f"SELECT version, applied_at FROM {MIGRATIONS_TABLE}").fetchall()
    conn.commit()
    again = migrate(conn, PLAIN)
    assert again.applied == []
    assert again.already_applied == LABELS
    assert conn.execute(f"SELECT version, applied_at FROM {MIGRATIONS_TABLE}").fetchall() == before


def test_tables_have_the_designed_columns(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, PLAIN)
    columns = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'readings' ORDER BY ordinal_position"
    ).fetchall()
    names = [f["name"] for f in current_schema("Reading")["fields"]]
    assert [c[0] for c in columns] == [*names, "kafka_partition", "kafka_offset"]
    types = {name: data_type for name, data_type, _ in columns}
    assert types["ts"] == types["received_at"] == "timestamp with time zone"
    assert types["power_w"] == "double precision"
    assert types["kafka_offset"] == "bigint"
    keys = dict(
        conn.execute(
            "SELECT tc.table_name, string_agg(k.column_name, ',' ORDER BY k.ordinal_position) "
            "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k "
            "USING (constraint_schema, constraint_name) WHERE tc.constraint_type = 'PRIMARY KEY' "
            "AND tc.table_name IN ('readings', 'anomaly_scores') GROUP BY tc.table_name"
        ).fetchall()
    )
    assert keys == {"readings": "meter_id,ts", "anomaly_scores": "meter_id,model_id,window_start"}


def test_four_processes_migrating_at_once_apply_each_migration_once(
    pg_db: PostgresEndpoint,
) -> None:
    barrier = threading.Barrier(4)
    reports, errors = [], []

    def run() -> None:
        try:
            with _connect(pg_db) as connection:
                barrier.wait(timeout=10)
                reports.append(migrate(connection, PLAIN))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(reports) == 4
    applied = sorted(label for report in reports for label in report.applied)
    assert applied == LABELS
    with _connect(pg_db) as connection:
        count = connection.execute(f"SELECT count(*) FROM {MIGRATIONS_TABLE}").fetchone()
        assert count == (len(LABELS),)


def test_a_changed_applied_migration_is_a_loud_error(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn, PLAIN)
    first = packaged_migrations()[0]
    edited = MigrationFile(
        first.version,
        first.name,
        None,
        first.variants[None].filename,
        first.variants[None].text + "\n-- edited after release\n",
    )
    tampered = (Migration(first.version, first.name, {None: edited}), *packaged_migrations()[1:])
    monkeypatch.setattr("sinks.db.migrate.packaged_migrations", lambda: tampered)
    with pytest.raises(ChecksumMismatchError, match="0001_tables"):
        migrate(conn, PLAIN)
    assert status(conn).changed == ["0001_tables"]
    # The failed run released its lock and left no transaction behind.
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    assert held == (0,)


def test_a_failing_migration_leaves_the_previous_version(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = MigrationFile(
        4, "broken", None, "0004_broken.sql", "CREATE TABLE half_done (a int);\nSELECT 1/0;\n"
    )
    migrations = (*packaged_migrations(), Migration(4, "broken", {None: broken}))
    monkeypatch.setattr("sinks.db.migrate.packaged_migrations", lambda: migrations)
    with pytest.raises(MigrationError, match=r"0004_broken\.sql failed"):
        migrate(conn, PLAIN)
    versions = conn.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
    assert versions == (3,)
    assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_migrate_refuses_a_connection_inside_a_transaction(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("SELECT 1")
    with pytest.raises(MigrationError, match="no open transaction"):
        migrate(conn, PLAIN)


def test_migrate_works_on_autocommit_and_dict_row_connections(pg_db: PostgresEndpoint) -> None:
    with _connect(pg_db, autocommit=True, row_factory=dict_row) as connection:
        assert migrate(connection, PLAIN).applied == LABELS
        assert status(connection).pending == []


def test_status_before_and_after(conn: psycopg.Connection[Any]) -> None:
    before = status(conn)
    assert before.path is None
    assert before.pending == LABELS
    migrate(conn, PLAIN)
    after = status(conn)
    assert after.path == "postgresql"
    assert after.pending == []
    assert [m.state for m in after.migrations] == ["applied"] * len(LABELS)


# -- aggregates ----------------------------------------------------------------------------


def test_readings_hourly_follows_the_energy_rule(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, PLAIN)
    # Meter a: steady 10 s cadence, a 2-minute silence (capped at 30 s), and a reading that
    # starts the next hour. Meter b: one reading, its hour to itself.
    a = [(0, 1000.0), (10, 2000.0), (20, 3000.0), (140, 500.0), (3590, 800.0), (3605, 100.0)]
    for i, (second, power) in enumerate(a):
        _insert_reading(conn, "a", T0 + timedelta(seconds=second), power, i)
    _insert_reading(conn, "b", T0 + timedelta(seconds=1800), 3600.0)
    conn.commit()
    rows = conn.execute(
        "SELECT meter_id, bucket, n_readings, mean_power_w, max_power_w, min_power_w, energy_kwh "
        "FROM readings_hourly ORDER BY meter_id, bucket"
    ).fetchall()

    def expected(meter: str, points: list[tuple[int, float]], hour: int) -> tuple[Any, ...]:
        start = hour * 3600
        inside = [(s, p) for s, p in points if start <= s < start + 3600]
        powers = [p for _, p in inside]
        energy_wh = window_energy_wh(
            [s * S for s, _ in inside], powers, start * S, (start + 3600) * S, 30 * S
        )
        return (
            meter,
            T0 + hour * HOUR,
            len(inside),
            pytest.approx(sum(powers) / len(powers)),
            max(powers),
            min(powers),
            pytest.approx(energy_wh / 1000),
        )

    assert rows == [
        expected("a", a, 0),
        expected("a", a, 1),
        expected("b", [(1800, 3600.0)], 0),
    ]
    # Spelled out once: 0 s back, 10 + 10 + 30 (capped) + 30 (capped) held, 10 s to the hour end.
    assert rows[0][6] == pytest.approx(
        (1000 * 10 + 2000 * 10 + 3000 * 30 + 500 * 30 + 800 * 10) / 3.6e6
    )
    # A lone reading holds 30 s back and 30 s ahead: 3600 W for a minute is 0.06 kWh.
    assert rows[2][6] == pytest.approx(0.06)


def test_scores_hourly_counts_windows_and_anomalies(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, PLAIN)
    for minute, score, anomaly in [
        (0, 0.5, False),
        (1, 2.5, True),
        (2, 1.5, True),
        (61, 0.1, False),
    ]:
        _insert_score(conn, "a", T0 + timedelta(minutes=minute), score, anomaly)
    conn.commit()
    rows = conn.execute(
        "SELECT meter_id, model_id, bucket, n_windows, mean_score, max_score, anomalies "
        "FROM scores_hourly ORDER BY bucket"
    ).fetchall()
    assert rows == [
        ("a", "m1", T0, 3, pytest.approx(1.5), 2.5, 2),
        ("a", "m1", T0 + HOUR, 1, pytest.approx(0.1), 0.1, 0),
    ]


def test_refresh_aggregates_is_a_no_op_on_plain_postgresql(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, PLAIN)
    refresh_aggregates(conn, T0, T0 + HOUR)
    assert conn.autocommit is False
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.execute("SELECT 1")
    with pytest.raises(DbError, match="no open transaction"):
        refresh_aggregates(conn, T0, T0 + HOUR)


# -- roles and the CLI ---------------------------------------------------------------------


def test_db_init_creates_roles_grants_and_schema(pg_db: PostgresEndpoint, roles: Roles) -> None:
    env = _env(pg_db, roles)
    result = _run(["db", "init"], env)
    assert result.exit_code == 0, result.output
    assert f"writer role {roles.writer}: created, LOGIN, password set" in result.output
    assert f"reader role {roles.reader}: created, LOGIN, password set" in result.output
    for label in LABELS:
        assert f"migration {label}: applied" in result.output
    assert roles.writer_password not in result.output
    assert roles.reader_password not in result.output
    assert pg_db.password not in result.output

    with _connect(pg_db) as admin:
        owners = admin.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname IN "
            "('readings', 'anomaly_scores', 'readings_hourly', 'scores_hourly', %s)",
            (MIGRATIONS_TABLE,),
        ).fetchall()
    assert owners == [(roles.writer,)]

    # The writer (the sinks' login) writes; the reader reads everything but writes nothing.
    with psycopg.connect(_as_user(pg_db, roles.writer), password=roles.writer_password) as writer:
        _insert_reading(writer, "a", T0, 500.0)
    with psycopg.connect(_as_user(pg_db, roles.reader), password=roles.reader_password) as reader:
        for relation in ("readings", "anomaly_scores", "readings_hourly", "scores_hourly"):
            reader.execute(f"SELECT * FROM {relation}").fetchall()
        assert reader.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _insert_reading(reader, "b", T0, 1.0)
        reader.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE sneaky (a int)")


def test_db_init_is_idempotent_and_future_tables_are_readable(
    pg_db: PostgresEndpoint, roles: Roles
) -> None:
    env = _env(pg_db, roles)
    assert _run(["db", "init"], env).exit_code == 0
    again = _run(["db", "init"], env)
    assert again.exit_code == 0, again.output
    assert f"writer role {roles.writer}: exists" in again.output
    assert "migration 0001_tables: applied" not in again.output
    assert "db init done: 0 migration(s) applied now" in again.output
    # A table the writer creates later (a future migration) is readable by default privileges.
    with psycopg.connect(_as_user(pg_db, roles.writer), password=roles.writer_password) as writer:
        writer.execute("CREATE TABLE later_table (a int)")
        writer.execute("INSERT INTO later_table VALUES (1)")
    with psycopg.connect(_as_user(pg_db, roles.reader), password=roles.reader_password) as reader:
        assert reader.execute("SELECT a FROM later_table").fetchall() == [(1,)]


def test_db_init_updates_a_changed_writer_password(pg_db: PostgresEndpoint, roles: Roles) -> None:
    assert _run(["db", "init"], _env(pg_db, roles)).exit_code == 0
    rotated = _env(pg_db, roles, METERSTREAM_POSTGRES_PASSWORD="rotated-secret-42")
    result = _run(["db", "init"], rotated)
    assert result.exit_code == 0, result.output
    assert "rotated-secret-42" not in result.output
    with psycopg.connect(_as_user(pg_db, roles.writer), password="rotated-secret-42") as writer:
        assert writer.execute("SELECT current_user").fetchone() == (roles.writer,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_as_user(pg_db, roles.writer), password=roles.writer_password).close()


def test_db_migrate_and_status_commands(pg_db: PostgresEndpoint, roles: Roles) -> None:
    env = {
        "METERSTREAM_POSTGRES_DSN": pg_db.dsn,
        "METERSTREAM_POSTGRES_PASSWORD": pg_db.password,
        "METERSTREAM_DB_TIMESCALE": "false",
    }
    before = _run(["db", "status"], env)
    assert before.exit_code == 0, before.output
    assert "path: not chosen yet" in before.output
    assert f"0 applied, {len(LABELS)} pending" in before.output
    assert _run(["db", "status", "--check"], env).exit_code == 1

    migrated = _run(["db", "migrate"], env)
    assert migrated.exit_code == 0, migrated.output
    lines = migrated.output.splitlines()
    assert lines[: len(LABELS)] == [f"migration {label}: applied (postgresql)" for label in LABELS]
    assert f"schema up to date: {len(LABELS)} migrations, path postgresql" in lines[-1]
    assert "nothing to do" in _run(["db", "migrate"], env).output

    after = _run(["db", "status", "--check"], env)
    assert after.exit_code == 0, after.output
    assert "path: postgresql" in after.output
    assert f"{len(LABELS)} applied, 0 pending" in after.output

    with _connect(pg_db, autocommit=True) as admin:
        admin.execute(f"UPDATE {MIGRATIONS_TABLE} SET checksum = 'x' WHERE version = 2")
    changed = _run(["db", "status"], env)
    assert changed.exit_code == 1
    assert "0002_time_layout  changed" in changed.output
    assert "error: applied migration(s) 0002_time_layout differ" in changed.output
    refused = _run(["db", "migrate"], env)
    assert refused.exit_code == 1
    assert "error:" in refused.output


def test_cli_errors_are_one_line_without_the_password(
    pg_db: PostgresEndpoint, roles: Roles
) -> None:
    env = _env(pg_db, roles, METERSTREAM_DB_ADMIN_PASSWORD="wrong-password-123")
    result = _run(["db", "init"], env)
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot connect to the database as admin")
    assert "wrong-password-123" not in result.output
    assert "Traceback" not in result.output

    same = _env(pg_db, roles, METERSTREAM_DB_READER_ROLE=roles.writer)
    result = _run(["db", "init"], same)
    assert result.exit_code == 78  # EX_CONFIG
    assert "must name different roles" in result.output


# -- TimescaleDB (where the provider runs it) ----------------------------------------------


@pytest.fixture
def ts_conn(pg_db: PostgresEndpoint) -> Iterator[psycopg.Connection[Any]]:
    if not pg_db.timescaledb:
        pytest.skip("needs TimescaleDB (the Docker provider's image); this server is plain")
    with _connect(pg_db, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    with _connect(pg_db) as connection:
        yield connection


def _jobs(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    rows = conn.execute(
        "SELECT j.proc_name, coalesce(c.view_name, j.hypertable_name), j.config "
        "FROM timescaledb_information.jobs j LEFT JOIN "
        "timescaledb_information.continuous_aggregates c "
        "ON c.materialization_hypertable_name = j.hypertable_name WHERE j.job_id >= 1000"
    ).fetchall()
    return {(str(proc), str(relation)): config for proc, relation, config in rows}


def test_timescaledb_path_layout_and_policies(ts_conn: psycopg.Connection[Any]) -> None:
    report = migrate(ts_conn, DbSettings())
    assert report.path == "timescaledb"
    assert report.applied == LABELS
    assert len(report.policies) == 5
    intervals = dict(
        ts_conn.execute(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_name IN ('readings', 'anomaly_scores')"
        ).fetchall()
    )
    assert intervals == {"readings": timedelta(days=1), "anomaly_scores": timedelta(days=7)}
    caggs = ts_conn.execute(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY view_name"
    ).fetchall()
    assert caggs == [("readings_hourly",), ("scores_hourly",)]
    jobs = _jobs(ts_conn)
    assert jobs[("policy_retention", "readings")]["drop_created_before"] in ("90 days", "@ 90 days")
    assert "compress_created_before" in jobs[("policy_compression", "readings")]
    assert "compress_created_before" in jobs[("policy_compression", "anomaly_scores")]
    assert ("policy_refresh_continuous_aggregate", "readings_hourly") in jobs
    ts_conn.commit()
    # Unchanged settings: nothing re-created. Changed settings: only that policy.
    assert migrate(ts_conn, DbSettings()).policies == []
    changed = migrate(ts_conn, DbSettings(readings_retention="30d"))
    assert changed.policies == [
        "policy readings retention: drop chunks created more than 30 days ago (changed)"
    ]


def test_timescaledb_aggregates_match_the_plain_columns_and_refresh(
    ts_conn: psycopg.Connection[Any],
) -> None:
    migrate(ts_conn, DbSettings())
    long_ago = T0 - timedelta(days=400)  # a replay of last year: outside the refresh window
    for second, power in [(0, 1000.0), (10, 2000.0), (20, 3000.0)]:
        _insert_reading(ts_conn, "a", long_ago + timedelta(seconds=second), power)
    _insert_score(ts_conn, "a", long_ago, 2.0, True)
    ts_conn.commit()
    refresh_aggregates(ts_conn, long_ago, long_ago + timedelta(seconds=20))
    # Read only what the refresh materialized, not the real-time part over the raw rows.
    for view in ("readings_hourly", "scores_hourly"):
        ts_conn.execute(
            f"ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = true)"
        )
    types = ts_conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'readings_hourly' ORDER BY ordinal_position"
    ).fetchall()
    assert [t for _, t in types] == [
        "text",
        "timestamp with time zone",
        "bigint",
        "double precision",
        "double precision",
        "double precision",
        "double precision",
    ]
    row = ts_conn.execute(
        "SELECT n_readings, mean_power_w, energy_kwh FROM readings_hourly WHERE meter_id = 'a'"
    ).fetchone()
    exact_wh = window_energy_wh([0, 10 * S, 20 * S], [1000.0, 2000.0, 3000.0], 0, 3600 * S, 30 * S)
    assert row == (3, pytest.approx(2000.0), pytest.approx(exact_wh / 1000))  # steady cadence
    scores = ts_conn.execute("SELECT n_windows, anomalies FROM scores_hourly").fetchall()
    assert scores == [(1, 1)]


def test_timescaledb_replayed_old_chunks_survive_the_policies(
    ts_conn: psycopg.Connection[Any],
) -> None:
    migrate(ts_conn, DbSettings(compress_after="1d"))
    replayed = T0 - timedelta(days=400)
    _insert_reading(ts_conn, "a", replayed, 1000.0)
    ts_conn.commit()
    ts_conn.autocommit = True
    jobs = ts_conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name IN "
        "('policy_retention', 'policy_compression') AND hypertable_name = 'readings'"
    ).fetchall()
    assert len(jobs) == 2
    for (job_id,) in jobs:
        ts_conn.execute("CALL run_job(%s)", (job_id,))
    # The chunk was created just now: a year-old reading is neither dropped nor compressed.
    assert ts_conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
    compressed = ts_conn.execute(
        "SELECT bool_or(is_compressed) FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'readings'"
    ).fetchone()
    assert compressed == (False,)
