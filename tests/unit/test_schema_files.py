"""The schema files themselves: layout, history, field lists, docs, fingerprints, TypedDicts."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from schemas.loader import (
    SCHEMA_NAMES,
    canonical_form,
    current_schema,
    fingerprint,
    load_history,
    strip_logical_types,
)
from schemas.records import AnomalyScoreRecord, ModelInfoRecord, ReadingRecord
from schemas.timestamps import datetime_to_micros, micros_to_datetime

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
PYPROJECT = SCHEMAS_DIR.parent / "pyproject.toml"

NULLABLE_DOUBLES = [
    "power_production_w",
    "min_power_w",
    "average_power_w",
    "max_power_w",
    "min_power_production_w",
    "max_power_production_w",
    "accumulated_consumption_kwh",
    "accumulated_production_kwh",
    "accumulated_consumption_last_hour_kwh",
    "accumulated_production_last_hour_kwh",
    "accumulated_cost",
    "accumulated_reward",
    "last_meter_consumption_kwh",
    "last_meter_production_kwh",
    "power_reactive_kvar",
    "power_production_reactive_kvar",
    "power_factor",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
]
TIMESTAMP = {"type": "long", "logicalType": "timestamp-micros"}


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_current_schema_equals_the_newest_history_entry(name: str) -> None:
    newest = load_history().latest(name)
    assert newest.schema == current_schema(name), (
        f"schemas/avro/{name}.avsc changed: release it as schemas/history/{name}/"
        f"{newest.version + 1}.avsc (and keep it FULL_TRANSITIVE)"
    )


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_history_versions_are_numbered_from_one_without_gaps(name: str) -> None:
    versions = [v.version for v in load_history().versions(name)]
    assert versions == list(range(1, len(versions) + 1))


def test_every_schema_file_is_package_data() -> None:
    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["schemas"]
    for path in SCHEMAS_DIR.rglob("*.avsc"):
        relative = path.relative_to(SCHEMAS_DIR).as_posix()
        assert any(fnmatch.fnmatch(relative, glob) for glob in globs), relative


def test_reading_fields_in_order_with_types() -> None:
    reading = current_schema("Reading")
    assert (reading["name"], reading["namespace"]) == ("Reading", "meterstream")
    fields = _fields(reading)
    assert list(fields)[:6] == [
        "meter_id",
        "source",
        "ts",
        "ts_offset_minutes",
        "received_at",
        "power_w",
    ]
    assert list(fields)[6:] == [*NULLABLE_DOUBLES, "currency", "signal_strength"]
    assert fields["meter_id"]["type"] == fields["source"]["type"] == "string"
    assert fields["ts"]["type"] == fields["received_at"]["type"] == TIMESTAMP
    assert fields["power_w"]["type"] == "double"
    assert "default" not in fields["power_w"]
    for name, kind in [
        ("ts_offset_minutes", "int"),
        ("currency", "string"),
        ("signal_strength", "int"),
        *[(n, "double") for n in NULLABLE_DOUBLES],
    ]:
        assert fields[name]["type"] == ["null", kind], name
        assert fields[name]["default"] is None, name


def test_anomaly_score_fields_with_types() -> None:
    score = current_schema("AnomalyScore")
    assert (score["name"], score["namespace"]) == ("AnomalyScore", "meterstream")
    fields = _fields(score)
    assert list(fields) == [
        "meter_id",
        "model_id",
        "window_start",
        "window_end",
        "n_readings",
        "features",
        "score",
        "threshold",
        "is_anomaly",
        "attribution",
        "model",
        "scored_at",
    ]
    for name in ("window_start", "window_end", "scored_at"):
        assert fields[name]["type"] == TIMESTAMP
    assert (
        fields["features"]["type"]
        == fields["attribution"]["type"]
        == {
            "type": "map",
            "values": "double",
        }
    )
    assert fields["threshold"]["type"] == ["null", "double"]
    assert fields["threshold"]["default"] is None
    model = fields["model"]["type"]
    assert (model["name"], model["namespace"]) == ("ModelInfo", "meterstream")
    assert [(f["name"], f["type"]) for f in model["fields"]] == [
        ("engine", "string"),
        ("num_trees", "int"),
        ("sample_size", "int"),
        ("shingle_size", "int"),
        ("feature_names", {"type": "array", "items": "string"}),
        ("threshold_kind", "string"),
    ]


def _all_fields(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [f for branch in schema for f in _all_fields(branch)]
    if not isinstance(schema, dict):
        return []
    found = []
    for field in schema.get("fields", []):
        found += [field, *_all_fields(field["type"])]
    for key in ("items", "values"):
        found += _all_fields(schema.get(key))
    return found


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_field_says_what_it_means(name: str) -> None:
    for field in _all_fields(current_schema(name)):
        assert len(field.get("doc", "")) > 10, field["name"]


@pytest.mark.parametrize(
    ("typed", "schema"),
    [
        (ReadingRecord, current_schema("Reading")),
        (AnomalyScoreRecord, current_schema("AnomalyScore")),
        (ModelInfoRecord, _fields(current_schema("AnomalyScore"))["model"]["type"]),
    ],
    ids=["Reading", "AnomalyScore", "ModelInfo"],
)
def test_typed_dicts_match_the_schemas(typed: Any, schema: dict[str, Any]) -> None:
    assert list(get_type_hints(typed)) == [f["name"] for f in schema["fields"]]
    assert typed.__required_keys__ == {f["name"] for f in schema["fields"] if "default" not in f}


def test_loader_checks_files_and_strips_only_logical_types() -> None:
    schema: dict[str, Any] = {"type": "record", "name": "T", "fields": [
        {"name": "t", "type": TIMESTAMP},
        {"name": "m", "type": {"type": "map", "values": "int"}, "default": {"logicalType": 1}},
    ]}  # fmt: skip
    stripped = strip_logical_types(schema)
    assert stripped["fields"][0]["type"] == {"type": "long"}
    assert stripped["fields"][1]["default"] == {"logicalType": 1}
    assert schema["fields"][0]["type"] == TIMESTAMP  # the original is untouched


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO written from the Avro spec, to check fastavro's result and byte order."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_fingerprint_is_crc64_avro_of_the_canonical_form_little_endian(name: str) -> None:
    schema = current_schema(name)
    form = canonical_form(schema)
    assert '"doc"' not in form
    assert "logicalType" not in form
    expected = _crc64_avro(form.encode()).to_bytes(8, "little")
    assert fingerprint(schema) == expected
    assert load_history().find(expected) is not None


def test_fingerprint_matches_the_avro_test_vector_for_null() -> None:
    # Java's SchemaNormalization.parsingFingerprint64 of "null" (Avro's own test suite).
    assert int.from_bytes(fingerprint("null"), "little", signed=True) == 7195948357588979594


def test_schema_files_are_valid_json_with_two_space_indent() -> None:
    for path in SCHEMAS_DIR.rglob("*.avsc"):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", path


def test_timestamp_helpers_are_exact_and_utc() -> None:
    moment = datetime(2021, 3, 14, 1, 43, 37, 500001, tzinfo=timezone(timedelta(hours=1)))
    micros = datetime_to_micros(moment)
    assert micros == 1_615_682_617_500_001
    assert micros_to_datetime(micros) == moment
    assert micros_to_datetime(micros).tzinfo is UTC
    for extreme in (datetime.min, datetime.max):
        aware = extreme.replace(tzinfo=UTC)
        assert micros_to_datetime(datetime_to_micros(aware)) == aware
    with pytest.raises(ValueError, match="no time zone"):
        datetime_to_micros(datetime(2021, 3, 14))
