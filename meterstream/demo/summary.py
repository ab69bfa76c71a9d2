"""What the demo prints when it ends: where the data is and how to look at it.

Secrets are never printed: the ``psql`` line is built from the DSN's host, port, database and
user, and the password is only pointed at (the variable, file or dotenv line that holds it).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from meterstream.demo.observe import Snapshot
from meterstream.demo.plan import DemoPlan
from meterstream.demo.services import Endpoints, read_env_file
from meterstream.demo.supervisor import Child
from meterstream.settings import Settings, env_files

_PSQL_KEYS = ("host", "port", "dbname", "user", "sslmode")
_PASSWORD_VARIABLE = "METERSTREAM_POSTGRES_PASSWORD"  # noqa: S105 - a variable name, not a value


def psql_command(dsn: str) -> str:
    """``psql "host=... port=... dbname=... user=..."`` from a DSN (URL or key=value).

    >>> psql_command("postgresql://meterstream@127.0.0.1:5433/meterstream")
    'psql "host=127.0.0.1 port=5433 dbname=meterstream user=meterstream"'
    """
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    parts = [f"{key}={params[key]}" for key in _PSQL_KEYS if params.get(key)]
    return f'psql "{" ".join(parts)}"'


def password_hint(settings: Settings, endpoints: Endpoints) -> str | None:
    """How to give psql the password without showing it; None when no password is configured."""
    postgres = settings.postgres
    if postgres.password_file is not None:
        return f'export PGPASSWORD="$(cat {shlex.quote(str(postgres.password_file))})"'
    if postgres.password is None:
        return None
    if endpoints.env_file is not None and _PASSWORD_VARIABLE in endpoints.env:
        return _from_dotenv(endpoints.env_file)
    if os.environ.get(_PASSWORD_VARIABLE):
        return f'export PGPASSWORD="${_PASSWORD_VARIABLE}"'
    for path in reversed(env_files()):  # the file that wins comes last
        if _PASSWORD_VARIABLE in read_env_file(path):
            return _from_dotenv(path)
    return f"export PGPASSWORD=<the value of {_PASSWORD_VARIABLE}>"


def _from_dotenv(path: Path) -> str:
    pattern = f"s/^{_PASSWORD_VARIABLE}=//p"
    return f"export PGPASSWORD=\"$(sed -n '{pattern}' {shlex.quote(str(path))})\""


def query_lines(plan: DemoPlan) -> list[str]:
    env = f"METERSTREAM_LAKE_BUCKET={plan.bucket}"
    queries = [
        "SELECT * FROM daily_energy ORDER BY day, meter_id",
        "SELECT meter_id, count(*) AS readings, round(avg(power_w)) AS mean_w, "
        "max(power_w) AS max_w FROM readings GROUP BY meter_id ORDER BY meter_id",
        "SELECT date_trunc('hour', ts) AS hour, meter_id, round(avg(power_w)) AS mean_w "
        "FROM readings GROUP BY ALL ORDER BY hour DESC, meter_id LIMIT 12",
    ]
    return [f"{env} meterstream query {shell_quote(sql)}" for sql in queries]


def shell_quote(text: str) -> str:
    """Double quotes when nothing inside needs escaping (SQL keeps its 'literals' readable).

    >>> print(shell_quote("SELECT 'a'"))
    "SELECT 'a'"
    >>> print(shell_quote('say "$HOME"'))
    'say "$HOME"'
    """
    if not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def where_the_data_is(
    plan: DemoPlan,
    settings: Settings,
    endpoints: Endpoints,
    snapshot: Snapshot | None,
    children: list[Child],
) -> list[str]:
    """The closing text, one string per line."""
    lines = [f"Data of demo run {plan.run_id}:"]
    if snapshot is not None:
        published = (
            "?" if snapshot.readings_published is None else f"{snapshot.readings_published:,}"
        )
        lines.append(
            f"  {published} readings published, {snapshot.windows:,} windows scored, "
            f"{snapshot.anomalies:,} flagged as anomalies, {len(snapshot.labels)} anomalies "
            f"injected by the simulator"
        )
    lines += [
        "",
        "PostgreSQL (anomaly_scores: one row per window; readings: the raw readings):",
        f"  {psql_command(settings.postgres.dsn)}",
    ]
    hint = password_hint(settings, endpoints)
    if hint:
        lines.append(f"  password: {hint}")
    lines += [
        "  then for example:",
        "    SELECT meter_id, window_start, round(score::numeric, 2) AS score, "
        "round(threshold::numeric, 2) AS threshold, top_feature FROM anomaly_scores",
        f"      WHERE model_id LIKE '{plan.model_pattern}' AND is_anomaly ORDER BY window_start;",
        "",
        f"Lake (Parquet on {settings.s3.endpoint}, bucket {plan.bucket}; "
        "DuckDB views readings, daily_energy, window_energy):",
    ]
    lines += [f"  {line}" for line in query_lines(plan)]
    if endpoints.origin == "configured":
        lines.append("  (with the same METERSTREAM_S3_* settings as this demo)")
    lines += [
        "",
        f"Injected anomalies (ground truth, JSON lines): {plan.labels_file}",
        "Logs:",
    ]
    lines += [f"  {child.spec.name:<12} {child.spec.log_path}" for child in children]
    if endpoints.origin != "configured":
        lines += [
            "",
            "The local services keep running (the data stays reachable); "
            "`meterstream dev services down` stops them.",
        ]
    return lines
