"""The hourly aggregates ``readings_hourly`` and ``scores_hourly``, and refreshing them after a replay.

On TimescaleDB they are continuous aggregates with real-time aggregation: a refresh policy
materializes the last :data:`REFRESH_START_OFFSET` (3 days) every :data:`REFRESH_SCHEDULE`, and
rows newer than the materialized part are aggregated at query time. Rows written *further back*
(a replay of last year) are invisible to both until someone refreshes that range: the sink calls
:func:`refresh_aggregates` after writing them (:func:`outside_refresh_window` tells when). On
plain PostgreSQL the aggregates are views, always current, and the refresh is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from sinks.db.errors import DbError
from sinks.db.query import fetch_all, fetch_one

AGGREGATES: Final[tuple[str, ...]] = ("readings_hourly", "scores_hourly")
BUCKET: Final = timedelta(hours=1)

# The refresh policy's window, relative to when it runs: [now - 3 days, now - 1 hour). The newest
# hour is left to real-time aggregation (it still changes); three days cover any lateness the
# pipeline has in live operation. Policies are set in sinks/db/policies.py from these values.
REFRESH_START_OFFSET: Final = timedelta(days=3)
REFRESH_END_OFFSET: Final = timedelta(hours=1)
REFRESH_SCHEDULE: Final = timedelta(minutes=15)

_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


def outside_refresh_window(ts: datetime, now: datetime | None = None) -> bool:
    """True if a row at ``ts`` may be missed by the refresh policy's next runs.

    The policy's window start moves forward by up to one schedule interval before it runs again,
    and only whole buckets are refreshed, so the safe part is the window shortened by both.

    >>> now = datetime(2024, 6, 1, tzinfo=UTC)
    >>> outside_refresh_window(now - timedelta(days=1), now)
    False
    >>> outside_refresh_window(now - timedelta(days=3), now)
    True
    """
    now = now or datetime.now(UTC)
    safe = REFRESH_START_OFFSET - REFRESH_SCHEDULE - BUCKET
    return ts < now - safe


def bucket_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole hours covering ``[start, end]`` (both inclusive), as a refresh needs them.

    TimescaleDB refreshes only buckets entirely inside the window, so the window is widened to
    bucket boundaries: the hour holding ``start`` up to the end of the hour holding ``end``.

    >>> t = datetime(2024, 1, 1, 10, 15, tzinfo=UTC)
    >>> [d.strftime("%H:%M") for d in bucket_window(t, t + timedelta(minutes=50))]
    ['10:00', '12:00']
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("refresh_aggregates needs timezone-aware datetimes")
    if end < start:
        raise ValueError(f"refresh window ends ({end}) before it starts ({start})")

    def floor(moment: datetime) -> datetime:
        return _EPOCH + (moment - _EPOCH) // BUCKET * BUCKET

    return floor(start), floor(end) + BUCKET


def refresh_statement(view: str, start: datetime, end: datetime) -> sql.Composed:
    """``CALL refresh_continuous_aggregate('view', start, end)`` with literal bounds."""
    return sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
        sql.Literal(view), sql.Literal(start), sql.Literal(end)
    )


def continuous_aggregates(conn: psycopg.Connection[Any]) -> list[str]:
    """Which of :data:`AGGREGATES` are continuous aggregates here (none on plain PostgreSQL)."""
    if fetch_one(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'") is None:
        return []
    rows = fetch_all(
        conn,
        "SELECT view_name FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = current_schema() AND view_name = ANY(%s) ORDER BY view_name",
        (list(AGGREGATES),),
    )
    return [str(row[0]) for row in rows]


def refresh_aggregates(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    """Re-materialize ``readings_hourly`` and ``scores_hourly`` for the hours covering [start, end].

    For rows written outside the refresh policy's window (:func:`outside_refresh_window`).
    TimescaleDB refreshes in transactions of its own, so this runs in autocommit: the connection
    must have no open transaction (commit the written rows first); its autocommit setting is
    restored afterwards. On plain PostgreSQL (views, always current) it does nothing.

    Server and connection failures propagate as :class:`psycopg.Error` (the rows are safe;
    only the hourly views lag until the next refresh); calling it inside an open transaction
    is a :class:`DbError`, and naive or reversed bounds a :class:`ValueError`.
    """
    window_start, window_end = bucket_window(start, end)
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise DbError(
            "refresh_aggregates needs a connection with no open transaction: commit the "
            "written rows first (TimescaleDB cannot refresh inside a transaction)"
        )
    previous = conn.autocommit
    conn.autocommit = True
    try:
        for view in continuous_aggregates(conn):
            conn.execute(refresh_statement(view, window_start, window_end))
    finally:
        conn.autocommit = previous
