"""Which TimescaleDB a database has, and which of its features meterstream may use.

Version floors, from TimescaleDB's own update scripts and release notes:

- 2.11.0: INSERT ... ON CONFLICT (the sinks' upsert) into compressed chunks, which replays hit
  (release notes of 2.11.0, timescale/timescaledb#5454 and #5252). Older versions are refused.
- 2.13.0: ``add_retention_policy(..., drop_created_before => ...)`` and
  ``add_compression_policy(..., compress_created_before => ...)``, which judge a chunk by when it
  was created instead of by the time range of its data (timescale/timescaledb#6227; the
  parameters appear in ``sql/updates/2.12.2--2.13.0.sql``). Older versions fall back to
  ``drop_after``/``compress_after`` with a warning.
"""

from __future__ import annotations

import re
from typing import Any, Final

import psycopg

from sinks.db.query import fetch_one

Version = tuple[int, int, int]

MIN_VERSION: Final[Version] = (2, 11, 0)
CREATED_BEFORE_VERSION: Final[Version] = (2, 13, 0)


def parse_version(text: str) -> Version:
    """``(2, 17, 2)`` from ``"2.17.2"``; suffixes like ``-dev`` are ignored.

    >>> parse_version("2.17.2"), parse_version("2.13.0-dev"), parse_version("2.9")
    ((2, 17, 2), (2, 13, 0), (2, 9, 0))
    """
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if match is None:
        raise ValueError(f"not a TimescaleDB version: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


def installed_version(conn: psycopg.Connection[Any]) -> str | None:
    """The extension's version in the connected database, or None when it is not installed."""
    row = fetch_one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    return str(row[0]) if row else None


def available_version(conn: psycopg.Connection[Any]) -> str | None:
    """The version ``CREATE EXTENSION timescaledb`` would install, or None if the server has none."""
    row = fetch_one(
        conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    return str(row[0]) if row else None
