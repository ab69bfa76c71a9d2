"""DuckDB over the lake: an in-memory database whose views read the Parquet files on S3.

Works with no network besides the S3 endpoint: ``httpfs`` (needed for ``s3://``) is loaded
from the ``duckdb-ext-httpfs`` wheel, and DuckDB's automatic extension download is switched
off, so a missing extension is an error here rather than a download attempt.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import duckdb
import pyarrow as pa

from meterstream.errors import MeterstreamError
from meterstream.settings import S3Settings, Settings
from sinks.lake.schema import readings_schema
from sinks.query.views import (
    VIEW_NAMES,
    derived_view_statements,
    lake_columns,
    lake_glob,
    quote_literal,
    raw_view_statement,
)

log = logging.getLogger(__name__)

__all__ = [
    "VIEW_NAMES",
    "LakeQueryError",
    "describe_views",
    "httpfs_extension_dir",
    "open_lake",
    "run_query",
]

US_PER_SECOND = 1_000_000


class LakeQueryError(MeterstreamError):
    """DuckDB refused a query over the lake; the message is DuckDB's, on one line."""


def httpfs_extension_dir() -> Path:
    """The extension directory shipped by the ``duckdb-ext-httpfs`` wheel."""
    spec = importlib.util.find_spec("duckdb_ext")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        candidate = Path(location) / "extensions"
        if candidate.is_dir():
            return candidate
    raise MeterstreamError(
        "DuckDB's httpfs extension is not installed: install duckdb-ext-httpfs matching "
        f"duckdb {duckdb.__version__} (pinned in pyproject.toml)"
    )


ConfigValue = str | bool | int | float | list[str]


def offline_config() -> dict[str, ConfigValue]:
    """Connection config that never downloads an extension."""
    return {
        "extension_directory": str(httpfs_extension_dir()),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }


def _secret_statement(s3: S3Settings, bucket: str) -> str:
    options = {
        "KEY_ID": quote_literal(s3.access_key),
        "SECRET": quote_literal(s3.resolved_secret_key().get_secret_value()),
        "REGION": quote_literal(s3.region),
        "ENDPOINT": quote_literal(s3.host),
        "URL_STYLE": "'path'",  # MinIO, Garage and SeaweedFS serve buckets as paths
        "USE_SSL": "true" if s3.secure else "false",
        "SCOPE": quote_literal(f"s3://{bucket}"),
    }
    body = ", ".join(f"{k} {v}" for k, v in options.items())
    return f"CREATE OR REPLACE SECRET meterstream_lake (TYPE s3, {body})"


def one_line(exc: BaseException) -> str:
    """DuckDB's message without the caret lines: ``error:`` output is one line."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return " ".join(kept) or type(exc).__name__


def _lake_has_files(con: duckdb.DuckDBPyConnection, glob: str, bucket: str) -> bool:
    try:
        row = con.execute("SELECT count(*) FROM glob(?)", [glob]).fetchone()
    except duckdb.Error as exc:
        raise MeterstreamError(f"cannot list s3://{bucket}/readings/: {one_line(exc)}") from None
    return bool(row and row[0])


def open_lake(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's views (see :mod:`sinks.query.views`).

    The session's TimeZone is UTC, so TIMESTAMPTZ values print in UTC and ``date_trunc`` cuts
    UTC hours and days; ``SET TimeZone = 'Europe/Oslo'`` in a query changes that.
    An empty lake (no files yet) gives views with their columns and no rows.
    """
    con = duckdb.connect(":memory:", config=offline_config())
    try:
        con.execute("LOAD httpfs")
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as exc:
        con.close()
        raise MeterstreamError(f"cannot load DuckDB's httpfs: {one_line(exc)}") from None
    bucket = settings.lake.bucket
    try:
        con.execute(_secret_statement(settings.s3, bucket))
    except duckdb.Error:
        con.close()
        # The statement holds the secret key: report neither it nor DuckDB's echo of it.
        raise MeterstreamError(
            "cannot create DuckDB's S3 secret (check METERSTREAM_S3_*)"
        ) from None
    glob = lake_glob(bucket)
    columns = lake_columns(readings_schema())
    has_files = _lake_has_files(con, glob, bucket)
    if not has_files:
        log.info("the lake s3://%s/readings/ has no files yet: every view is empty", bucket)
    worker = settings.worker
    try:
        con.execute(raw_view_statement(columns, glob if has_files else None))
        present = [str(row[0]) for row in con.execute("DESCRIBE readings_raw").fetchall()]
        for statement in derived_view_statements(
            columns,
            present,
            size_us=round(worker.window * US_PER_SECOND),
            max_gap_us=round(worker.energy_max_gap * US_PER_SECOND),
        ):
            con.execute(statement)
    except duckdb.Error as exc:
        con.close()
        raise MeterstreamError(f"cannot define the lake's views: {one_line(exc)}") from None
    return con


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run SQL (several statements allowed: the last one's rows) and return them as Arrow."""
    try:
        return con.execute(sql).fetch_arrow_table()
    except duckdb.Error as exc:
        raise LakeQueryError(one_line(exc)) from None


def describe_views(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of each lake view, in :data:`VIEW_NAMES` order."""
    return {
        name: [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        for name in VIEW_NAMES
    }
