"""Idempotent batch upserts into PostgreSQL: COPY into a staging table, then one INSERT … ON CONFLICT.

An identical re-delivery changes nothing (``WHERE … IS DISTINCT FROM``: no dead tuples, no
count); a re-delivery with different values updates the row and is counted, because it means
something upstream is not deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from sinks.scores.rows import Batch, TableSpec


@dataclass(frozen=True)
class UpsertResult:
    rows: int  # rows in the batch
    changed: int  # existing rows whose compared values changed


def staging_name(spec: TableSpec) -> str:
    return f"meterstream_staging_{spec.table}"


def create_staging_sql(spec: TableSpec) -> sql.Composed:
    """A session-local staging table, emptied at every commit."""
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(staging_name(spec)),
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.staging_type))
            for c in spec.columns
        ),
    )


# Binary COPY: no text formatting of every value on our side, no parsing on the server's.
_BINARY_NAMES = {
    "text": "text",
    "bigint": "int8",
    "integer": "int4",
    "double precision": "float8",
    "boolean": "bool",
}


def copy_types(spec: TableSpec) -> list[str]:
    """The staging columns' type names, as binary COPY needs them declared."""
    return [_BINARY_NAMES[c.staging_type] for c in spec.columns]


def copy_sql(spec: TableSpec) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(staging_name(spec)),
        sql.SQL(", ").join(map(sql.Identifier, spec.names)),
    )


def upsert_sql(spec: TableSpec) -> sql.Composed:
    """INSERT … SELECT from staging, ON CONFLICT update only rows whose values differ.

    Returns one row: (rows affected, rows that existed and were changed).
    """
    selected = [
        sql.SQL("timestamptz 'epoch' + {} * interval '1 microsecond'").format(
            sql.Identifier(c.name)
        )
        if c.is_time
        else sql.SQL("{}::{}").format(sql.Identifier(c.name), sql.SQL(c.cast))
        if c.cast
        else sql.Identifier(c.name)
        for c in spec.columns
    ]
    updated = [n for n in spec.names if n not in spec.key]
    target = sql.Identifier(spec.table)
    return sql.SQL(
        "WITH up AS (INSERT INTO {target} AS t ({cols}) SELECT {selected} FROM {staging} "
        "ON CONFLICT ({key}) DO UPDATE SET ({updated}) = ROW({excluded}) "
        "WHERE ROW({old}) IS DISTINCT FROM ROW({new}) RETURNING (xmax::text <> '0') AS existed) "
        "SELECT count(*) FILTER (WHERE existed) FROM up"
    ).format(
        target=target,
        cols=sql.SQL(", ").join(map(sql.Identifier, spec.names)),
        selected=sql.SQL(", ").join(selected),
        staging=sql.Identifier(staging_name(spec)),
        key=sql.SQL(", ").join(map(sql.Identifier, spec.key)),
        updated=sql.SQL(", ").join(map(sql.Identifier, updated)),
        excluded=sql.SQL(", ").join(
            sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in updated
        ),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in spec.compared),
        new=sql.SQL(", ").join(
            sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in spec.compared
        ),
    )


class TableWriter:
    """Writes :class:`Batch` es of one table inside the caller's transaction."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self._create = create_staging_sql(spec)
        self._copy = copy_sql(spec)
        self._upsert = upsert_sql(spec)
        self._types = copy_types(spec)

    def upsert(self, conn: psycopg.Connection, batch: Batch) -> UpsertResult:
        if not len(batch):
            return UpsertResult(0, 0)
        with conn.cursor() as cur:
            cur.execute(self._create)
            with cur.copy(self._copy) as copy:
                copy.set_types(self._types)
                for row in batch.rows():
                    copy.write_row(row)
            cur.execute(self._upsert)
            found = cur.fetchone()
        changed = int(found[0]) if found else 0
        return UpsertResult(len(batch), changed)
