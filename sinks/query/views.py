"""The SQL of the lake's DuckDB views, as pure functions of the schema and the settings.

Four views, each built on the one before:

- ``readings_raw``: every row of every lake file, Hive partition columns ``date`` and ``hour``
  included; files written before a column existed read it as NULL (``union_by_name``).
- ``readings``: one row per ``(meter_id, ts)``, the lowest ``(kafka_partition, kafka_offset)``
  winning: the first arrival, which also hides the duplicates a compaction leaves for a moment
  (merged file put, small files not yet deleted).
- ``window_energy``: the energy rule of :mod:`streams.core.energy` per meter and window.
- ``daily_energy``: kWh per meter and UTC day.

Nothing here touches a connection, so the text can be unit-tested and shown to users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from streams.core.energy import WINDOW_ENERGY_SQL

VIEW_NAMES: tuple[str, ...] = ("readings_raw", "readings", "window_energy", "daily_energy")

PARTITION_COLUMNS: tuple[tuple[str, str], ...] = (("date", "DATE"), ("hour", "INTEGER"))

_DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.binary(): "BLOB",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Column:
    """A column of the lake as DuckDB sees it."""

    name: str
    sql_type: str


def duckdb_type(data_type: pa.DataType) -> str:
    """DuckDB's name for an Arrow type of the lake schema.

    >>> duckdb_type(pa.timestamp("us", tz="UTC"))
    'TIMESTAMPTZ'
    """
    try:
        return _DUCKDB_TYPES[data_type]
    except KeyError:
        raise TypeError(f"no DuckDB type for lake column type {data_type}") from None


def lake_columns(schema: pa.Schema) -> tuple[Column, ...]:
    """The file columns of the lake schema, in order (without ``date`` and ``hour``)."""
    return tuple(Column(f.name, duckdb_type(f.type)) for f in schema)


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier (``date`` and ``hour`` are keywords in some dialects).

    >>> quote_ident('date')
    '"date"'
    """
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted SQL string literal.

    >>> quote_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def lake_glob(bucket: str) -> str:
    """Every data file of the lake: ``readings/date=…/hour=…/*.parquet``."""
    return f"s3://{bucket}/readings/*/*/*.parquet"


def readings_raw_sql(glob: str) -> str:
    """``readings_raw`` over the lake's files."""
    hive_types = ", ".join(f"{quote_literal(n)}: {t}" for n, t in PARTITION_COLUMNS)
    # union_by_name: a file written before an optional column was added has no such column;
    # without it, DuckDB would take the first file's schema and fail on (or drop) the rest.
    # hive_types: without them `hour=07` would be inferred per query, and `date` as VARCHAR.
    return (
        f"SELECT * FROM read_parquet({quote_literal(glob)}, hive_partitioning = true, "  # noqa: S608 - quoted glob, constants
        f"hive_types = {{{hive_types}}}, union_by_name = true)"
    )


def empty_readings_raw_sql(columns: Sequence[Column]) -> str:
    """``readings_raw`` of a lake without files: no rows, the columns a file would have."""
    # read_parquet fails on a glob that matches nothing, so an empty lake gets typed NULLs.
    parts = [f"CAST(NULL AS {c.sql_type}) AS {quote_ident(c.name)}" for c in columns]
    parts += [f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in PARTITION_COLUMNS]
    return f"SELECT {', '.join(parts)} WHERE false"


def readings_sql(columns: Sequence[Column], present: Iterable[str]) -> str:
    """``readings``: one row per (meter_id, ts), the first arrival winning.

    ``columns`` are the schema's (in order); ``present`` those ``readings_raw`` really has.
    A schema column no file has yet reads as NULL, and a column only newer files have (written
    by a newer meterstream) is kept after the schema's, so the view never fails to bind.
    """
    present_names = list(present)
    present_set = set(present_names)
    known = {c.name for c in columns} | {n for n, _ in PARTITION_COLUMNS}
    select = [
        quote_ident(c.name)
        if c.name in present_set
        else f"CAST(NULL AS {c.sql_type}) AS {quote_ident(c.name)}"
        for c in columns
    ]
    select += [quote_ident(n) for n in present_names if n not in known]
    select += [quote_ident(n) for n, _ in PARTITION_COLUMNS]
    # date and hour are functions of ts, so adding them to the PARTITION BY changes nothing,
    # but it lets DuckDB push a filter on them below the window, into the scan: `WHERE date =
    # …` then reads one day's files instead of the whole lake.
    return (
        f"SELECT {', '.join(select)} FROM readings_raw "  # noqa: S608 - schema columns
        "QUALIFY row_number() OVER ("
        'PARTITION BY meter_id, ts, "date", "hour" ORDER BY kafka_partition, kafka_offset) = 1'
    )


def window_energy_sql(size_us: int, max_gap_us: int) -> str:
    """``window_energy``: :data:`~streams.core.energy.WINDOW_ENERGY_SQL` over ``readings``."""
    if size_us <= 0 or max_gap_us <= 0:
        raise ValueError("window size and max gap must be positive")
    rule = WINDOW_ENERGY_SQL.format(size_us=int(size_us), max_gap_us=int(max_gap_us))
    # The rule wants `readings` with ts as epoch microseconds; a CTE of that name, in a scope
    # of its own, shadows the view for the rule's text only (main.readings is the view).
    # AT TIME ZONE 'UTC' turns the naive timestamp into a TIMESTAMPTZ whatever the session's
    # TimeZone is, so a user's `SET TimeZone` cannot shift the windows.
    return (
        "SELECT meter_id, make_timestamp(window_start) AT TIME ZONE 'UTC' AS window_start, "  # noqa: S608
        "energy_wh FROM (\n"
        "WITH readings AS (SELECT meter_id, epoch_us(ts) AS ts, power_w, kafka_partition, "
        "kafka_offset FROM main.readings)\n"
        f"SELECT * FROM (\n{rule}))"
    )


DAILY_ENERGY_SQL = (
    "SELECT meter_id, CAST(window_start AT TIME ZONE 'UTC' AS DATE) AS day, "
    "sum(energy_wh) / 1000.0 AS kwh FROM window_energy GROUP BY ALL"
)
"""``daily_energy``: windows are additive, so a day's kWh is the sum of its windows' Wh / 1000."""


def raw_view_statement(columns: Sequence[Column], glob: str | None) -> str:
    """CREATE VIEW ``readings_raw``; ``glob`` None means an empty lake (no files yet)."""
    body = empty_readings_raw_sql(columns) if glob is None else readings_raw_sql(glob)
    return f"CREATE OR REPLACE VIEW readings_raw AS {body}"


def derived_view_statements(
    columns: Sequence[Column], present: Iterable[str], *, size_us: int, max_gap_us: int
) -> list[str]:
    """CREATE VIEW for the views over ``readings_raw``, in dependency order.

    ``present`` are the columns ``readings_raw`` has (``DESCRIBE readings_raw``).
    """
    partition_names = {n for n, _ in PARTITION_COLUMNS}
    bodies = {
        "readings": readings_sql(columns, [n for n in present if n not in partition_names]),
        "window_energy": window_energy_sql(size_us, max_gap_us),
        "daily_energy": DAILY_ENERGY_SQL,
    }
    return [f"CREATE OR REPLACE VIEW {name} AS {body}" for name, body in bodies.items()]
