"""TimescaleDB background policies: compression, retention and continuous-aggregate refresh.

They depend on settings (``METERSTREAM_DB_READINGS_RETENTION``, ``METERSTREAM_DB_COMPRESS_AFTER``)
and on the TimescaleDB version, so they are not in the checksummed migration files: every
``migrate`` plans them (:func:`plan_policies`, pure, unit-tested) and re-creates only those whose
definition changed since the last run (:func:`apply_policies`, recorded in
``meterstream_schema_policies``). Re-creating a policy on every start would reset its schedule.

Replay safety: replaying last year's readings creates chunks for last year's days. A policy that
judges chunks by their data's time (``drop_after``, ``compress_after``) would drop or compress
those chunks on its next run, and the replayed data would vanish from the dashboards. Judged by
chunk *creation* time (``drop_created_before``, ``compress_created_before``, TimescaleDB 2.13+),
a replayed chunk lives as long as a live one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from meterstream.settings import DbSettings
from sinks.db.aggregates import (
    AGGREGATES,
    REFRESH_END_OFFSET,
    REFRESH_SCHEDULE,
    REFRESH_START_OFFSET,
)
from sinks.db.query import fetch_all
from sinks.db.timescale import CREATED_BEFORE_VERSION, Version, format_version

log = logging.getLogger(__name__)

PolicyKind = Literal["retention", "compression", "refresh"]

_REMOVE: Final[dict[PolicyKind, str]] = {
    "retention": "remove_retention_policy",
    "compression": "remove_compression_policy",
    "refresh": "remove_continuous_aggregate_policy",
}

POLICIES_TABLE: Final = "meterstream_schema_policies"


def interval_text(seconds: float) -> str:
    """A PostgreSQL interval for a duration, in the largest whole unit.

    >>> interval_text(90 * 86400), interval_text(36 * 3600), interval_text(1), interval_text(1.5)
    ('90 days', '36 hours', '1 second', '1.5 seconds')
    """
    micros = round(seconds * 1_000_000)
    for unit, size in (("day", 86_400_000_000), ("hour", 3_600_000_000), ("minute", 60_000_000)):
        if micros and micros % size == 0:
            count = micros // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    if micros % 1_000_000 == 0:
        count = micros // 1_000_000
        return f"{count} second{'s' if count != 1 else ''}"
    return f"{micros / 1_000_000:g} seconds"


def interval(value: float | timedelta) -> sql.Composed:
    """``INTERVAL '90 days'`` as SQL (a literal: the value comes from settings, never raw text)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return sql.SQL("INTERVAL {}").format(sql.Literal(interval_text(seconds)))


@dataclass(frozen=True)
class Policy:
    """One policy on one relation: how to remove it and, unless it is off, how to add it."""

    relation: str
    kind: PolicyKind
    add: sql.Composed | None  # None: the policy is off (retention 0 = keep)
    summary: str  # for humans: "drop chunks created more than 90 days ago"

    @property
    def name(self) -> str:
        """``readings retention``: the key in meterstream_schema_policies."""
        return f"{self.relation} {self.kind}"

    @property
    def remove(self) -> sql.Composed:
        return sql.SQL("SELECT {}({}, if_exists => true)").format(
            sql.SQL(_REMOVE[self.kind]), sql.Literal(self.relation)
        )

    def definition(self, context: Any = None) -> str:
        """What is stored to detect a change: the add statement, or ``off``."""
        return "off" if self.add is None else self.add.as_string(context)


@dataclass(frozen=True)
class PolicyPlan:
    policies: tuple[Policy, ...]
    warnings: tuple[str, ...]


def _call(function: str, relation: str, **arguments: sql.Composable) -> sql.Composed:
    # Function and argument names are constants of this module, written as they are (readable
    # in meterstream_schema_policies); the relation and the values are literals.
    named = [sql.SQL("{} => {}").format(sql.SQL(name), value) for name, value in arguments.items()]
    return sql.SQL("SELECT {}({})").format(
        sql.SQL(function), sql.SQL(", ").join([sql.Literal(relation), *named])
    )


def plan_policies(db: DbSettings, version: Version) -> PolicyPlan:
    """The policies the TimescaleDB path wants for these settings on this TimescaleDB version."""
    by_creation = version >= CREATED_BEFORE_VERSION
    warnings: list[str] = []
    if not by_creation:
        warnings.append(
            f"TimescaleDB {format_version(version)} cannot judge chunks by creation time "
            f"(needs {format_version(CREATED_BEFORE_VERSION)}+): retention and compression use "
            "the data's time instead, so replayed old readings may be compressed or dropped "
            "on the policies' next run; upgrade TimescaleDB"
        )
    retention_arg, compress_arg, how = (
        ("drop_created_before", "compress_created_before", "created more than")
        if by_creation
        else ("drop_after", "compress_after", "with data older than")
    )
    policies: list[Policy] = []

    if db.readings_retention > 0:
        policies.append(
            Policy(
                "readings",
                "retention",
                _call(
                    "add_retention_policy",
                    "readings",
                    **{retention_arg: interval(db.readings_retention)},
                ),
                f"drop chunks {how} {interval_text(db.readings_retention)} ago",
            )
        )
    else:
        policies.append(Policy("readings", "retention", None, "off (keep readings)"))

    for table in ("readings", "anomaly_scores"):
        policies.append(
            Policy(
                table,
                "compression",
                _call(
                    "add_compression_policy", table, **{compress_arg: interval(db.compress_after)}
                ),
                f"compress chunks {how} {interval_text(db.compress_after)} ago",
            )
        )

    for view in AGGREGATES:
        policies.append(
            Policy(
                view,
                "refresh",
                _call(
                    "add_continuous_aggregate_policy",
                    view,
                    start_offset=interval(REFRESH_START_OFFSET),
                    end_offset=interval(REFRESH_END_OFFSET),
                    schedule_interval=interval(REFRESH_SCHEDULE),
                ),
                f"refresh from {interval_text(REFRESH_START_OFFSET.total_seconds())} to "
                f"{interval_text(REFRESH_END_OFFSET.total_seconds())} ago every "
                f"{interval_text(REFRESH_SCHEDULE.total_seconds())}",
            )
        )
    return PolicyPlan(tuple(policies), tuple(warnings))


def apply_policies(conn: psycopg.Connection[Any], plan: PolicyPlan) -> list[str]:
    """Re-create the policies whose definition changed; one line per change.

    Runs in the caller's transaction (migrate holds the advisory lock around it).
    """
    stored: dict[str, str] = {
        str(name): str(definition)
        for name, definition in fetch_all(
            conn, sql.SQL("SELECT name, definition FROM {}").format(sql.Identifier(POLICIES_TABLE))
        )
    }
    changes: list[str] = []
    for policy in plan.policies:
        definition = policy.definition(conn)
        if stored.get(policy.name) == definition:
            continue
        conn.execute(policy.remove)
        if policy.add is not None:
            conn.execute(policy.add)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, definition) VALUES (%s, %s) ON CONFLICT (name) "
                "DO UPDATE SET definition = excluded.definition, applied_at = now()"
            ).format(sql.Identifier(POLICIES_TABLE)),
            (policy.name, definition),
        )
        action = "set" if policy.name not in stored else "changed"
        changes.append(f"policy {policy.name}: {policy.summary} ({action})")
        log.info("policy %s: %s (%s)", policy.name, policy.summary, action)
    return changes
