"""`meterstream demo` end to end: connector, worker and both sinks as children, then a clean exit.

The demo runs as a subprocess against the test services (``--no-services``), as fast as the
simulator goes, and must end by itself (``--exit-when-done``) with scores in PostgreSQL, files
in the lake, the lines that show where the data is, no child left behind and no secret printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from minio import Minio

from meterstream.demo.observe import Snapshot, WindowRow
from meterstream.demo.plan import DEMO_BUCKET, DemoOptions, DemoPlan
from meterstream.demo.services import Endpoints
from meterstream.demo.summary import where_the_data_is
from meterstream.demo.supervisor import group_alive
from meterstream.demo.view import FLAG, frame_lines, status_line
from meterstream.settings import Settings
from tests.integration.sink_helpers import pg_count, pg_rows

DEMO_TIMEOUT_S = 150


def _demo_env(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_POSTGRES_DSN": settings.postgres.dsn,
        "METERSTREAM_S3_ENDPOINT": settings.s3.endpoint,
        "METERSTREAM_S3_ACCESS_KEY": settings.s3.access_key,
        "METERSTREAM_S3_SECRET_KEY": settings.s3.resolved_secret_key().get_secret_value(),
        "METERSTREAM_DEV_ENV_FILE": "",
        "METERSTREAM_ENV_FILE": "",
    }
    password = settings.postgres.resolved_password()
    if password is not None:
        env["METERSTREAM_POSTGRES_PASSWORD"] = password.get_secret_value()
    if settings.schema_registry.url:
        env["METERSTREAM_SCHEMA_REGISTRY_URL"] = settings.schema_registry.url
    return env


def _run_demo(env: dict[str, str], data_dir: Path, cwd: Path) -> tuple[int, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterstream.cli",
            "demo",
            "--no-services",
            "--homes",
            "2",
            "--speed",
            "max",
            "--duration",
            "3h",
            "--exit-when-done",
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # Let the demo stop its children (and print what it knows) before failing.
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
        raise AssertionError(
            f"demo did not finish within {DEMO_TIMEOUT_S} s:\n{output}\n{_logs(data_dir)}"
        ) from None
    return process.returncode, output


def _logs(data_dir: Path) -> str:
    parts = []
    for path in sorted((data_dir / "logs").glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-30:]
        parts.append(f"--- {path.name} ---\n" + "\n".join(lines))
    return "\n".join(parts)


def _remove_objects(client: Minio, bucket: str, marker: str) -> None:
    for obj in client.list_objects(bucket, prefix="readings/", recursive=True):
        if obj.object_name is not None and marker in obj.object_name:
            client.remove_object(bucket, obj.object_name)


def test_demo_runs_the_pipeline_and_exits_cleanly(
    settings_factory: Callable[..., Settings], tmp_path: Path, minio_client: Minio
) -> None:
    settings = settings_factory(postgres=True, s3=True)
    env = _demo_env(settings)
    data_dir = tmp_path / "demo"
    started = time.monotonic()
    code, output = _run_demo(env, data_dir, tmp_path)
    elapsed = time.monotonic() - started
    run = re.search(r"run (\d{8}-\d{6})", output)
    assert run is not None, output
    prefix = f"demo.{run.group(1)}."
    try:
        assert code == 0, f"exit {code} after {elapsed:.0f} s:\n{output}\n{_logs(data_dir)}"

        # Every child was started, and none of their process groups is left.
        pids = [int(p) for p in re.findall(r"^started .*? pid (\d+)", output, re.MULTILINE)]
        assert len(pids) == 4, output
        assert [pid for pid in pids if group_alive(pid)] == []

        # Scores of this run are in PostgreSQL, both homes up to the end of the span.
        assert pg_count(settings, "anomaly_scores") > 0
        meters = pg_rows(
            settings,
            "SELECT meter_id, count(*) FROM anomaly_scores "
            f"WHERE model_id LIKE '{prefix}worker-%' GROUP BY meter_id",
        )
        assert len(meters) == 2, meters
        # 3 h of 1-minute windows per home; all of them were scored before the demo stopped.
        assert all(count == 180 for _, count in meters), meters

        # The lake holds this run's readings.
        objects = [
            o.object_name
            for o in minio_client.list_objects(DEMO_BUCKET, prefix="readings/", recursive=True)
            if o.object_name is not None and prefix in o.object_name
        ]
        assert objects, output

        # Where the data is, and nothing secret.
        assert 'psql "host=' in output
        assert "meterstream query" in output
        assert "daily_energy" in output
        assert str(data_dir / "logs" / "worker.log") in output
        for secret in (
            env["METERSTREAM_S3_SECRET_KEY"],
            env.get("METERSTREAM_POSTGRES_PASSWORD", ""),
        ):
            if len(secret) >= 6:
                assert secret not in output
    finally:
        _remove_objects(minio_client, DEMO_BUCKET, prefix)
    print(f"demo finished in {elapsed:.1f} s")


# -- the text the demo shows, without services ---------------------------------------------------


def _plan(tmp_path: Path) -> DemoPlan:
    options = DemoOptions(
        homes=2, speed="60", duration_s=6 * 3600, data_dir=tmp_path, exit_when_done=False
    )
    return DemoPlan.new(options, datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC))


def _snapshot(plan: DemoPlan) -> Snapshot:
    start = plan.sim_end.replace(minute=0)
    rows = {
        "sim-0001": [
            WindowRow("sim-0001", start, start, 412.0, 3.5, 2.1, True, "power_mean_w", "stuck"),
            WindowRow("sim-0001", start, start, 380.0, 0.0, None, False, None),
        ],
        "sim-0002": [WindowRow("sim-0002", start, start, 95.0, 1.2, 2.4, False, "power_std_w")],
    }
    return Snapshot(
        elapsed_s=75,
        children=[("worker", "running"), ("connector", "finished")],
        readings_published=12_345,
        windows=600,
        anomalies=3,
        lake_files=8,
        recent=rows,
        flagged=[rows["sim-0001"][0]],
    )


def test_plan_names_and_span(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert plan.prefix == "demo.20260105-120030."
    assert plan.sim_end == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert (plan.sim_end - plan.sim_start).total_seconds() == 6 * 3600
    env = plan.settings_env()
    assert env["METERSTREAM_WORKER_APP_ID"].startswith(plan.prefix)
    assert env["METERSTREAM_LAKE_GROUP_ID"].startswith(plan.prefix)
    assert env["METERSTREAM_SIM_START"] == "2026-01-05T06:00:00+00:00"


def test_views_show_windows_flags_and_counters(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    snapshot = _snapshot(plan)
    frame = "\n".join(frame_lines(plan, snapshot, height=40))
    assert "sim-0001" in frame
    assert "sim-0002" in frame
    assert FLAG in frame
    assert "power_mean_w" in frame
    assert "warm-up" in frame
    assert "readings published 12,345" in frame
    assert "lake files 8" in frame
    assert "\x1b[" not in frame  # no colours unless asked
    compact = "\n".join(frame_lines(plan, snapshot, height=20))
    assert "sim-0002" in compact  # one line per meter when blocks do not fit
    line = status_line(plan, snapshot)
    assert "\n" not in line
    assert "windows scored 600" in line
    assert "anomalies flagged 3" in line


def test_summary_points_at_the_password_without_showing_it(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from meterstream.settings import PostgresSettings, load_settings

    plan = _plan(tmp_path)
    secret = "not-for-your-eyes-42"
    settings = load_settings(
        env_file_paths=(),
        postgres=PostgresSettings(
            dsn="postgresql://meterstream@127.0.0.1:5433/meterstream", password=SecretStr(secret)
        ),
    )
    endpoints = Endpoints("dev.env", {"METERSTREAM_POSTGRES_PASSWORD": secret}, Path("dev.env"))
    text = "\n".join(where_the_data_is(plan, settings, endpoints, _snapshot(plan), []))
    assert 'psql "host=127.0.0.1 port=5433 dbname=meterstream user=meterstream"' in text
    assert "PGPASSWORD" in text
    assert "dev.env" in text
    assert secret not in text
    assert f"METERSTREAM_LAKE_BUCKET={DEMO_BUCKET} meterstream query" in text
