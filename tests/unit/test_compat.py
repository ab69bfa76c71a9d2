"""Schema evolution: FULL_TRANSITIVE across the released history, and the checker's rules."""

from __future__ import annotations

import copy
from itertools import permutations
from typing import Any

import pytest

from schemas.codec import AvroCodec
from schemas.compat import check_can_read, check_full_transitive
from schemas.errors import DecodeError
from schemas.loader import load_history
from tests.unit.test_schema_strategies import READING

HISTORY = load_history()
RELEASED_PAIRS = [
    pytest.param(reader, writer, id=f"{reader.label} reads {writer.label}")
    for name in HISTORY.names()
    for reader, writer in [*permutations(HISTORY.versions(name), 2)]
    + [(v, v) for v in HISTORY.versions(name)]
]
SAMPLE = {
    "meter_id": "home-1",
    "source": "tibber",
    "ts": 1_700_000_000_000_000,
    "received_at": 1_700_000_000_100_000,
    "power_w": 812.5,
    "voltage_l1_v": 230.1,
}


def _reading_with(
    *extra: dict[str, Any], drop: str | None = None, retype: dict[str, Any] | None = None
) -> dict[str, Any]:
    schema = copy.deepcopy(READING)
    fields = [f for f in schema["fields"] if f["name"] != drop]
    for field in fields:
        if retype and field["name"] in retype:
            field["type"] = retype[field["name"]]
    schema["fields"] = [*fields, *extra]
    return schema


@pytest.mark.parametrize(("reader", "writer"), RELEASED_PAIRS)
def test_every_released_version_reads_every_other(reader: Any, writer: Any) -> None:
    assert check_can_read(reader.schema, writer.schema) == []


@pytest.mark.parametrize("name", HISTORY.names())
def test_history_is_full_transitive(name: str) -> None:
    assert check_full_transitive([v.schema for v in HISTORY.versions(name)]) == []


def test_adding_an_optional_field_is_compatible_both_ways_through_the_codec() -> None:
    v2 = _reading_with({"name": "frequency_hz", "type": ["null", "double"], "default": None})
    assert check_full_transitive([READING, v2]) == []

    history = HISTORY.with_release("Reading", v2)  # in memory: v1 (packaged) and v2
    old = AvroCodec(READING, history=history)
    new = AvroCodec(v2, history=history)

    from_new = old.decode(new.encode({**SAMPLE, "frequency_hz": 50.02}))
    assert "frequency_hz" not in from_new
    assert from_new["voltage_l1_v"] == 230.1

    from_old = new.decode(old.encode(SAMPLE))
    assert from_old["frequency_hz"] is None
    assert from_old["power_w"] == 812.5


def test_an_unreleased_version_is_unknown_to_readers_of_the_packaged_history() -> None:
    v2 = _reading_with({"name": "frequency_hz", "type": ["null", "double"], "default": None})
    new = AvroCodec(v2, history=HISTORY.with_release("Reading", v2))
    with pytest.raises(DecodeError, match="in no released schema"):
        AvroCodec.for_schema("Reading").decode(new.encode(SAMPLE))


def test_a_required_field_without_default_breaks_old_data() -> None:
    v2 = _reading_with({"name": "phase_count", "type": "int"})
    assert check_can_read(v2, READING) == [
        "Reading.phase_count: missing in the writer (by name and aliases)"
        " and the reader has no default"
    ]
    assert check_can_read(READING, v2) == []  # old readers skip it: only one direction breaks
    problems = check_full_transitive([READING, v2])
    assert problems == [
        "v2 reading v1: Reading.phase_count: missing in the writer (by name and aliases)"
        " and the reader has no default"
    ]


def test_an_incompatible_type_change_is_caught_both_ways() -> None:
    v2 = _reading_with(retype={"meter_id": "int"})
    assert check_can_read(v2, READING) == [
        "Reading.meter_id: writer type string cannot be read as int"
    ]
    assert check_can_read(READING, v2) == [
        "Reading.meter_id: writer type int cannot be read as string"
    ]


def test_a_rename_without_alias_is_caught_and_an_alias_fixes_one_direction() -> None:
    power = next(f for f in READING["fields"] if f["name"] == "power_w")
    renamed = _reading_with({**power, "name": "import_power_w"}, drop="power_w")
    assert check_can_read(renamed, READING) == [
        "Reading.import_power_w: missing in the writer (by name and aliases)"
        " and the reader has no default"
    ]
    assert check_can_read(READING, renamed) == [
        "Reading.power_w: missing in the writer (by name and aliases) and the reader has no default"
    ]
    aliased = _reading_with(
        {**power, "name": "import_power_w", "aliases": ["power_w"]}, drop="power_w"
    )
    assert check_can_read(aliased, READING) == []
    assert check_can_read(READING, aliased) != []  # old readers still look for power_w


def test_the_codec_refuses_an_incompatible_writer_and_names_the_field() -> None:
    broken = _reading_with(retype={"power_w": "string"})
    history = HISTORY.with_release("Reading", broken)
    writer = AvroCodec(broken, history=history)
    reader = AvroCodec(READING, history=history)
    data = writer.encode({**SAMPLE, "power_w": "lots"})
    with pytest.raises(
        DecodeError, match=r"Reading v2 cannot be read as Reading: Reading\.power_w"
    ):
        reader.decode(data)


def _record(name: str, *fields: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def _field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
        ({"type": "long", "logicalType": "timestamp-micros"}, "long"),
        ("int", ["null", "long"]),
        (["null", "int"], ["null", "long", "string"]),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "double"}),
        ({"type": "map", "values": "float"}, {"type": "map", "values": "double"}),
    ],
)
def test_promotions_the_spec_allows(writer: Any, reader: Any) -> None:
    assert (
        check_can_read(_record("R", _field("x", reader)), _record("R", _field("x", writer))) == []
    )


@pytest.mark.parametrize(
    ("writer", "reader", "problem"),
    [
        ("long", "int", "writer type long cannot be read as int"),
        ("double", "float", "writer type double cannot be read as float"),
        ("string", "int", "writer type string cannot be read as int"),
        (["null", "string"], "string", "writer type null cannot be read as string"),
        ("boolean", ["null", "int"], "writer type boolean matches no reader branch"),
        ({"type": "array", "items": "long"}, {"type": "array", "items": "int"}, "R.x[]: writer"),
        ({"type": "map", "values": "string"}, {"type": "map", "values": "int"}, "R.x{}: writer"),
    ],
)
def test_changes_the_spec_forbids(writer: Any, reader: Any, problem: str) -> None:
    problems = check_can_read(_record("R", _field("x", reader)), _record("R", _field("x", writer)))
    assert len(problems) == 1
    assert problems[0].startswith("R.x")
    assert problem in problems[0]


def test_enums_need_every_writer_symbol_or_a_reader_default() -> None:
    old = {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}
    new = {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}
    with_default = {**old, "default": "A"}
    assert check_can_read(_wrap(new), _wrap(old)) == []
    assert check_can_read(_wrap(old), _wrap(new)) == [
        "R.x: enum symbols ['C'] unknown to the reader, which has no default"
    ]
    assert check_can_read(_wrap(with_default), _wrap(new)) == []


def test_fixed_needs_equal_size_and_named_types_equal_names_or_an_alias() -> None:
    assert check_can_read(
        _wrap({"type": "fixed", "name": "F", "size": 4}),
        _wrap({"type": "fixed", "name": "F", "size": 8}),
    ) == ["R.x: fixed size 8 cannot be read as 4"]
    inner_old = _record("Inner", _field("a", "int"))
    inner_new = _record("Renamed", _field("a", "int"))
    assert "another name" in check_can_read(_wrap(inner_new), _wrap(inner_old))[0]
    assert check_can_read(_wrap({**inner_new, "aliases": ["Inner"]}), _wrap(inner_old)) == []


def test_named_references_and_recursive_types_resolve() -> None:
    node = _record(
        "Node",
        _field("value", "int"),
        _field("next", ["null", "Node"], default=None),
    )
    node_long = copy.deepcopy(node)
    node_long["fields"][0]["type"] = "long"
    assert check_can_read(node_long, node) == []
    assert check_can_read(node, node_long) == ["Node.value: writer type long cannot be read as int"]
    shared = _record(
        "Pair",
        _field("a", _record("Leg", _field("w", "double"))),
        _field("b", "Leg"),
        _field("c", {"type": "Leg"}),
    )
    assert check_can_read(shared, copy.deepcopy(shared)) == []
    narrower = copy.deepcopy(shared)
    narrower["fields"][0]["type"]["fields"][0]["type"] = "float"
    assert check_can_read(narrower, shared) == [
        "Pair.a.w: writer type double cannot be read as float",
        "Pair.b.w: writer type double cannot be read as float",
        "Pair.c.w: writer type double cannot be read as float",
    ]


def _wrap(kind: Any) -> dict[str, Any]:
    return _record("R", _field("x", kind))
