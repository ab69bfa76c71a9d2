"""Reading query results as plain tuples, whatever row factory the caller's connection has.

The sink may open its connection with ``row_factory=dict_row``; this package unpacks tuples, so
it reads through cursors of its own with ``tuple_row``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import tuple_row


def fetch_all(
    conn: psycopg.Connection[Any], query: str | sql.SQL | sql.Composed, params: Params | None = None
) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def fetch_one(
    conn: psycopg.Connection[Any], query: str | sql.SQL | sql.Composed, params: Params | None = None
) -> tuple[Any, ...] | None:
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()
