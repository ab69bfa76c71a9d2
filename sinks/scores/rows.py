"""Rows for the ``readings`` and ``anomaly_scores`` tables, from decoded records (pure code).

Each table is described once by a :class:`TableSpec`: its columns in staging order, its key, the
columns whose change means "upstream is not deterministic", and how a record becomes a row.
Timestamps stay integer microseconds here; the upsert turns them into ``timestamptz`` exactly
(``'epoch' + n * 1 µs``), so no float rounding can move a key.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.loader import current_schema


@dataclass(frozen=True)
class Column:
    name: str
    staging_type: str  # the type in the staging table (binary COPY target)
    is_time: bool = False  # integer microseconds in staging, timestamptz in the table
    cast: str | None = None  # the table's type when staging holds another (jsonb as text)


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # Columns that may differ between two deliveries of the same fact without anything being
    # wrong (arrival times, Kafka coordinates); every other column is compared.
    volatile: frozenset[str]
    to_row: Callable[[Mapping[str, Any], int, int], tuple[Any, ...]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def compared(self) -> tuple[str, ...]:
        return tuple(
            c.name for c in self.columns if c.name not in self.volatile and c.name not in self.key
        )

    @property
    def partition_position(self) -> int:
        return self.names.index("kafka_partition")

    @property
    def time_column(self) -> str:
        """The time column the table is partitioned by (hypertable dimension)."""
        return self.key[-1]

    @property
    def key_positions(self) -> tuple[int, ...]:
        names = self.names
        return tuple(names.index(k) for k in self.key)


_AVRO_STAGING = {"string": "text", "double": "double precision", "int": "integer", "long": "bigint"}


def _avro_column(field: Mapping[str, Any]) -> Column:
    avro_type = field["type"]
    if isinstance(avro_type, list):
        avro_type = next(t for t in avro_type if t != "null")
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros":
            return Column(field["name"], "bigint", is_time=True)
        avro_type = avro_type["type"]
    return Column(field["name"], _AVRO_STAGING[avro_type])


KAFKA_COLUMNS = (Column("kafka_partition", "integer"), Column("kafka_offset", "bigint"))


def _reading_columns() -> tuple[Column, ...]:
    return (*(_avro_column(f) for f in current_schema("Reading")["fields"]), *KAFKA_COLUMNS)


# Decoded records carry every field of the schema: one C call picks them in order.
_pick_reading = operator.itemgetter(*(f["name"] for f in current_schema("Reading")["fields"]))


def reading_row(record: Mapping[str, Any], partition: int, offset: int) -> tuple[Any, ...]:
    return (*_pick_reading(record), partition, offset)


def finite_or_none(value: float | None) -> float | None:
    """JSON (and so jsonb) has no NaN or infinity: those become null.

    >>> finite_or_none(float("nan")), finite_or_none(1.5)
    (None, 1.5)
    """
    if value is None or not math.isfinite(value):
        return None
    return value


def _json_map(values: Mapping[str, float]) -> str:
    return json.dumps({k: finite_or_none(v) for k, v in sorted(values.items())})


def top_feature(attribution: Mapping[str, float]) -> str | None:
    """The feature with the largest contribution (ties: the first name), None when empty.

    >>> top_feature({"power_mean_w": 0.2, "hour_sin": 1.1, "energy_wh": 1.1})
    'energy_wh'
    """
    finite = {k: v for k, v in attribution.items() if v is not None and math.isfinite(v)}
    if not finite:
        return None
    return min(finite, key=lambda name: (-finite[name], name))


def score_row(record: Mapping[str, Any], partition: int, offset: int) -> tuple[Any, ...]:
    attribution = record["attribution"]
    return (
        record["meter_id"],
        record["model_id"],
        record["window_start"],
        record["window_end"],
        record["n_readings"],
        _json_map(record["features"]),
        record["score"],
        record.get("threshold"),
        record["is_anomaly"],
        _json_map(attribution),
        top_feature(attribution),
        json.dumps(record["model"], sort_keys=True),
        record["scored_at"],
        partition,
        offset,
    )


READINGS = TableSpec(
    table="readings",
    columns=_reading_columns(),
    key=("meter_id", "ts"),
    volatile=frozenset({"received_at", "kafka_partition", "kafka_offset"}),
    to_row=reading_row,
)

SCORES = TableSpec(
    table="anomaly_scores",
    columns=(
        Column("meter_id", "text"),
        Column("model_id", "text"),
        Column("window_start", "bigint", is_time=True),
        Column("window_end", "bigint", is_time=True),
        Column("n_readings", "integer"),
        Column("features", "text", cast="jsonb"),
        Column("score", "double precision"),
        Column("threshold", "double precision"),
        Column("is_anomaly", "boolean"),
        Column("attribution", "text", cast="jsonb"),
        Column("top_feature", "text"),
        Column("model", "text", cast="jsonb"),
        Column("scored_at", "bigint", is_time=True),
        *KAFKA_COLUMNS,
    ),
    key=("meter_id", "model_id", "window_start"),
    # scored_at is the worker's wall clock: a re-sent score carries a new one.
    volatile=frozenset({"scored_at", "kafka_partition", "kafka_offset"}),
    to_row=score_row,
)


class Batch:
    """Rows of one table waiting to be written, deduplicated by key (the last offset wins).

    PostgreSQL refuses an upsert that touches the same key twice in one statement, so a batch
    holds at most one row per key; the later delivery replaces the earlier one.

    >>> batch = Batch(SCORES.key_positions)
    >>> batch.add(("m1", "x", 0, 1), 0); batch.add(("m1", "x", 0, 2), 1); len(batch), batch.replaced
    (1, 1)
    """

    def __init__(self, key_positions: tuple[int, ...]) -> None:
        self._key_positions = key_positions
        self._rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.replaced = 0
        self.min_time: int | None = None
        self.max_time: int | None = None

    def add(self, row: tuple[Any, ...], time_us: int) -> None:
        key = tuple(row[i] for i in self._key_positions)
        if key in self._rows:
            self.replaced += 1
        self._rows[key] = row
        if self.min_time is None or time_us < self.min_time:
            self.min_time = time_us
        if self.max_time is None or time_us > self.max_time:
            self.max_time = time_us

    def absorb_older(self, older: Batch) -> None:
        """Add an older batch's rows under this one: rows of this batch win for the same key."""
        for key, row in older._rows.items():
            self._rows.setdefault(key, row)
        for time_us in (older.min_time, older.max_time):
            if time_us is not None:
                self.min_time = time_us if self.min_time is None else min(self.min_time, time_us)
                self.max_time = time_us if self.max_time is None else max(self.max_time, time_us)

    def drop_partitions(self, partition_position: int, partitions: set[int]) -> int:
        """Forget rows whose Kafka partition is in ``partitions``; returns how many."""
        gone = [k for k, row in self._rows.items() if row[partition_position] in partitions]
        for key in gone:
            del self._rows[key]
        return len(gone)

    def rows(self) -> Iterable[tuple[Any, ...]]:
        return self._rows.values()

    def __len__(self) -> int:
        return len(self._rows)
