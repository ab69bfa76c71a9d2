"""The lake's Arrow schema, derived from the ``Reading`` Avro schema so the two cannot drift.

Avro ``timestamp-micros`` becomes ``timestamp[us, tz=UTC]``, ``["null", T]`` a nullable column,
and three columns say where each row came from: ``kafka_partition``, ``kafka_offset`` (together
unique, which is what the lake's views deduplicate on) and ``kafka_timestamp`` (the broker's
append time). ``date`` and ``hour`` are not columns: they live in the object path, and readers
get them through Hive partitioning.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pyarrow as pa

from schemas.loader import current_schema

UTC_MICROS = pa.timestamp("us", tz="UTC")

KAFKA_COLUMNS: tuple[pa.Field, ...] = (
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", UTC_MICROS, nullable=False),
)

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "float": pa.float32(),
    "int": pa.int32(),
    "long": pa.int64(),
    "boolean": pa.bool_(),
    "bytes": pa.binary(),
}


def arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) of an Avro field type; only the shapes the contract uses.

    >>> arrow_type(["null", "double"])
    (DataType(double), True)
    >>> arrow_type({"type": "long", "logicalType": "timestamp-micros"})
    (TimestampType(timestamp[us, tz=UTC]), False)
    """
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1 or len(avro_type) != 2:
            raise TypeError(f"only [null, T] unions map to a column, not {avro_type!r}")
        inner, _ = arrow_type(branches[0])
        return inner, True
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros":
            return UTC_MICROS, False
        return arrow_type(avro_type["type"])
    if avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type], False
    raise TypeError(f"no lake column type for Avro type {avro_type!r}")


@cache
def readings_schema() -> pa.Schema:
    """The Arrow schema of every lake file: the Reading fields in Avro order, then Kafka's."""
    fields = []
    for field in current_schema("Reading")["fields"]:
        data_type, nullable = arrow_type(field["type"])
        fields.append(pa.field(field["name"], data_type, nullable=nullable))
    return pa.schema([*fields, *KAFKA_COLUMNS])


def reading_field_names() -> tuple[str, ...]:
    """The Reading fields, in Avro order (the lake's columns without the Kafka ones)."""
    return tuple(f["name"] for f in current_schema("Reading")["fields"])
