"""Hypothesis strategies for valid records, an in-memory registry, and checks of both.

Other test modules import from here; the tests below make sure the strategies themselves only
produce records that fit the schemas (judged by fastavro's own validator, not ours).
"""

from __future__ import annotations

import json
import math
import struct
from datetime import UTC, datetime
from typing import Any

from fastavro import parse_schema
from fastavro.validation import validate
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import UnknownSchemaError
from schemas.loader import current_schema, strip_logical_types
from schemas.timestamps import datetime_to_micros

READING = current_schema("Reading")
ANOMALY_SCORE = current_schema("AnomalyScore")

# "Extreme longs within timestamp range": every microsecond a datetime can show, years 1..9999.
MIN_MICROS = datetime_to_micros(datetime.min.replace(tzinfo=UTC))
MAX_MICROS = datetime_to_micros(datetime.max.replace(tzinfo=UTC))
INT32 = st.integers(-(2**31), 2**31 - 1)

timestamps = st.integers(MIN_MICROS, MAX_MICROS) | st.sampled_from([MIN_MICROS, MAX_MICROS, 0, -1])
# All doubles: NaN (any payload), +-inf, -0.0, subnormals.
doubles = st.floats(allow_nan=True, allow_infinity=True)
# Any unicode except lone surrogates, which no UTF-8 encoder accepts.
texts = st.text(st.characters(exclude_categories=["Cs"]))


def _nullable(field: dict[str, Any]) -> st.SearchStrategy[Any]:
    inner = field["type"][1]
    value = {"double": doubles, "int": INT32, "string": texts}[inner]
    return st.none() | value


def _optional_reading_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {f["name"]: _nullable(f) for f in READING["fields"] if "default" in f}


# Optional fields may be left out (the default applies), set to None, or set to a value.
readings = st.fixed_dictionaries(
    {
        "meter_id": texts,
        "source": st.sampled_from(["tibber", "simulator", "replay"]) | texts,
        "ts": timestamps,
        "received_at": timestamps,
        "power_w": doubles,
    },
    optional=_optional_reading_fields(),
)

model_infos = st.fixed_dictionaries(
    {
        "engine": st.sampled_from(["krcf", "rrcf"]),
        "num_trees": INT32,
        "sample_size": INT32,
        "shingle_size": INT32,
        "feature_names": st.lists(texts, max_size=8),
        "threshold_kind": texts,
    }
)

anomaly_scores = st.fixed_dictionaries(
    {
        "meter_id": texts,
        "model_id": texts,
        "window_start": timestamps,
        "window_end": timestamps,
        "n_readings": INT32,
        "features": st.dictionaries(texts, doubles, max_size=8),
        "score": doubles,
        "is_anomaly": st.booleans(),
        "attribution": st.dictionaries(texts, doubles, max_size=8),
        "model": model_infos,
        "scored_at": timestamps,
    },
    optional={"threshold": st.none() | doubles},
)


def with_defaults(schema: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """What a decoder returns for ``record``: every field, defaults filled in."""
    return {f["name"]: record.get(f["name"], f.get("default")) for f in schema["fields"]}


def exact(value: Any) -> Any:
    """A form that compares equal only when the values are bit-identical (NaN payloads, -0.0)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact(item) for item in value]
    return value


class InMemoryRegistry:
    """A registry without HTTP: ids from 1, FULL_TRANSITIVE recorded, lookups counted."""

    def __init__(self) -> None:
        self.schemas: dict[int, dict[str, Any]] = {}
        self.subjects: dict[str, list[int]] = {}
        self.compatibility: dict[str, str] = {}
        self.lookups = 0

    def register(self, subject: str, schema_json: str) -> int:
        schema = json.loads(schema_json)
        for schema_id, known in self.schemas.items():
            if known == schema:
                self.subjects.setdefault(subject, []).append(schema_id)
                return schema_id
        schema_id = len(self.schemas) + 1
        self.schemas[schema_id] = schema
        self.subjects.setdefault(subject, []).append(schema_id)
        return schema_id

    def set_compatibility(self, subject: str, level: str) -> None:
        self.compatibility[subject] = level

    def schema_for_id(self, schema_id: int) -> dict[str, Any]:
        self.lookups += 1
        if schema_id not in self.schemas:
            raise UnknownSchemaError(f"schema id {schema_id} is unknown")
        return self.schemas[schema_id]


_PARSED = {
    "Reading": parse_schema(strip_logical_types(READING)),
    "AnomalyScore": parse_schema(strip_logical_types(ANOMALY_SCORE)),
}


@given(readings)
def test_generated_readings_fit_the_schema(record: dict[str, Any]) -> None:
    assert validate(record, _PARSED["Reading"], raise_errors=True)


@given(anomaly_scores)
def test_generated_scores_fit_the_schema(record: dict[str, Any]) -> None:
    assert validate(record, _PARSED["AnomalyScore"], raise_errors=True)


def test_exact_tells_nan_payloads_and_signed_zeros_apart() -> None:
    other_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    assert exact(math.nan) != exact(other_nan)
    assert exact(0.0) != exact(-0.0)
    assert exact({"a": [1.5]}) == exact({"a": [1.5]})
