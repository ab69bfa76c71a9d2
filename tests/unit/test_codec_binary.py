"""Our compiled encoder and decoder against fastavro, on every Avro shape, not just Reading."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas.decoder import Unsupported, compile_decoder, read_long
from schemas.encoder import compile_encoder
from schemas.errors import EncodeError
from schemas.loader import strip_logical_types
from schemas.writers import zigzag_varint
from tests.unit.test_schema_strategies import (
    ANOMALY_SCORE,
    READING,
    anomaly_scores,
    exact,
    readings,
)

EVERYTHING = {
    "type": "record",
    "name": "Everything",
    "namespace": "test",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "float"},
        {"name": "blob", "type": "bytes"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {"name": "same_kind", "type": "Kind"},
        {"name": "choice", "type": ["null", "long", "string", "Kind", {"type": "array", "items": "int"}]},
        {"name": "nested", "type": {"type": "map", "values": {"type": "array", "items": "string"}}},
        {"name": "tree", "type": {"type": "record", "name": "Node", "fields": [
            {"name": "value", "type": "int"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
        ]}},
        {"name": "maybe_node", "type": ["null", "Node"], "default": None},
        {"name": "count", "type": "int", "default": 7},
        {"name": "label", "type": ["string", "null"], "default": "none"},
        {"name": "raw", "type": "bytes", "default": "\u00ff\u0000"},
    ],
}  # fmt: skip

nodes = st.recursive(
    st.fixed_dictionaries({"value": st.integers(-(2**31), 2**31 - 1), "children": st.just([])}),
    lambda inner: st.fixed_dictionaries(
        {"value": st.integers(-(2**31), 2**31 - 1), "children": st.lists(inner, max_size=3)}
    ),
    max_leaves=6,
)
kinds = st.sampled_from(["A", "B", "C"])
everything = st.fixed_dictionaries(
    {
        "flag": st.booleans(),
        "small": st.floats(width=32, allow_nan=False),
        "blob": st.binary(max_size=20),
        "kind": kinds,
        "digest": st.binary(min_size=4, max_size=4),
        "same_kind": kinds,
        "choice": st.none()
        | st.integers(-(2**63), 2**63 - 1)
        | st.text(max_size=5).filter(lambda s: s not in ("A", "B", "C"))
        | kinds
        | st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4),
        "nested": st.dictionaries(st.text(max_size=5), st.lists(st.text(max_size=5), max_size=3)),
        "tree": nodes,
        # Always set: fastavro writes a bytes default's JSON string as is, we follow the spec
        # (code points 0-255 become bytes); test_defaults_... covers ours.
        "raw": st.binary(max_size=5),
    },
    optional={
        "maybe_node": st.none() | nodes,
        "count": st.integers(-(2**31), 2**31 - 1),
        "label": st.none() | st.text(max_size=5),
    },
)

SCHEMAS = {
    "Reading": strip_logical_types(READING),
    "AnomalyScore": strip_logical_types(ANOMALY_SCORE),
    "Everything": EVERYTHING,
}
PARSED = {name: parse_schema(schema) for name, schema in SCHEMAS.items()}
ENCODE = {name: compile_encoder(schema) for name, schema in SCHEMAS.items()}
DECODE = {name: compile_decoder(schema) for name, schema in SCHEMAS.items()}


def _fastavro_write(name: str, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, PARSED[name], record)
    return buffer.getvalue()


def _fastavro_read(name: str, data: bytes) -> Any:
    return schemaless_reader(io.BytesIO(data), PARSED[name], None)


def _agree(name: str, record: dict[str, Any]) -> None:
    ours = ENCODE[name](record)
    assert ours == _fastavro_write(name, record)
    decoded, end = DECODE[name](ours, 0)
    assert end == len(ours)
    assert exact(decoded) == exact(_fastavro_read(name, ours))


@given(everything)
def test_every_avro_shape_matches_fastavro_both_ways(record: dict[str, Any]) -> None:
    _agree("Everything", record)


@given(readings)
def test_readings_match_fastavro_both_ways(record: dict[str, Any]) -> None:
    _agree("Reading", record)


@given(anomaly_scores)
def test_scores_match_fastavro_both_ways(record: dict[str, Any]) -> None:
    _agree("AnomalyScore", record)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varints_round_trip(value: int) -> None:
    encoded = zigzag_varint(value)
    assert read_long(encoded, 0) == (value, len(encoded))


def test_defaults_are_written_for_left_out_fields() -> None:
    record = {
        "flag": True,
        "small": 0.5,
        "blob": b"",
        "kind": "A",
        "digest": b"abcd",
        "same_kind": "C",
        "choice": None,
        "nested": {},
        "tree": {"value": 1, "children": []},
    }
    decoded, _ = DECODE["Everything"](ENCODE["Everything"](record), 0)
    assert (decoded["maybe_node"], decoded["count"], decoded["label"], decoded["raw"]) == (
        None,
        7,
        "none",
        b"\xff\x00",
    )


def test_negative_block_counts_from_other_writers_are_read() -> None:
    # Java may write a block as -count followed by the block's byte size.
    schema = {"type": "array", "items": "string"}
    data = zigzag_varint(-2) + zigzag_varint(4) + b"\x02a\x02b" + b"\x00"
    assert compile_decoder(schema)(data, 0) == (["a", "b"], len(data))
    assert schemaless_reader(io.BytesIO(data), parse_schema(schema), None) == ["a", "b"]


@pytest.mark.parametrize(
    "data",
    [
        zigzag_varint(2**40) + b"\x02a",  # more items than bytes left
        b"\x80" * 11,  # a varint that never ends
        zigzag_varint(-1),  # negative count without its byte size
    ],
)
def test_forged_counts_fail_fast(data: bytes) -> None:
    with pytest.raises((ValueError, IndexError)):
        compile_decoder({"type": "array", "items": "string"})(data, 0)


def test_arrays_of_zero_byte_items_are_left_to_fastavro() -> None:
    with pytest.raises(Unsupported):
        compile_decoder({"type": "array", "items": "null"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "D"}, r"test\.Kind: expected one of \['A', 'B', 'C'\], got str 'D'"),
        ({"digest": b"abc"}, r"test\.Digest: expected 4 bytes, got bytes"),
        ({"choice": 1.5}, r"Everything\.choice: expected a value of"),
        ({"small": 1e300}, r"Everything\.small: expected a float within single-precision"),
        ({"nested": {1: []}}, r"Everything\.nested key: expected a str, got int 1"),
        ({"tree": {"value": 1, "children": [{"value": "x", "children": []}]}}, r"Node\.value"),
    ],
)
def test_encode_errors_name_the_place(value: dict[str, Any], message: str) -> None:
    record = {
        "flag": False,
        "small": 0.0,
        "blob": b"",
        "kind": "A",
        "digest": b"abcd",
        "same_kind": "A",
        "choice": None,
        "nested": {},
        "tree": {"value": 1, "children": []},
    }
    with pytest.raises(EncodeError, match=message):
        ENCODE["Everything"]({**record, **value})
