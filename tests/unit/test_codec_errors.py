"""What the codec says when a record or its bytes are wrong."""

from __future__ import annotations

from typing import Any

import pytest

from meterstream.errors import MeterstreamError
from schemas.codec import AvroCodec
from schemas.errors import (
    DecodeError,
    EncodeError,
    IncompatibleSchemaError,
    RegistryError,
    UnknownSchemaError,
)
from schemas.framing import confluent_header, single_object_header
from schemas.loader import fingerprint, load_history
from tests.unit.test_schema_strategies import READING, InMemoryRegistry

CODEC = AvroCodec.for_schema("Reading")
VALID: dict[str, Any] = {
    "meter_id": "home-1",
    "source": "tibber",
    "ts": 1_700_000_000_000_000,
    "received_at": 1_700_000_000_100_000,
    "power_w": 812.5,
}


def test_every_error_is_a_meterstream_error() -> None:
    for error in (DecodeError, EncodeError, IncompatibleSchemaError, RegistryError):
        assert issubclass(error, MeterstreamError)
    assert issubclass(UnknownSchemaError, DecodeError)


def test_decode_error_names_topic_partition_offset_and_reason() -> None:
    error = DecodeError("bad bytes", topic="meter.readings.v1", partition=3, offset=1042)
    assert str(error) == "cannot decode meter.readings.v1[3]@1042: bad bytes"
    assert (error.topic, error.partition, error.offset, error.reason) == (
        "meter.readings.v1",
        3,
        1042,
        "bad bytes",
    )
    moved = UnknownSchemaError("who wrote this?").located("t", 1, 2)
    assert type(moved) is UnknownSchemaError
    assert str(moved) == "cannot decode t[1]@2: who wrote this?"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"power_w": None}, r"Reading\.power_w: expected a float, got NoneType None"),
        ({"power_w": "812"}, r"Reading\.power_w: expected a float, got str '812'"),
        ({"power_w": True}, r"Reading\.power_w: expected a float, got bool True"),
        ({"ts": 1.7e15}, r"Reading\.ts: expected an int within 64 bits, got float"),
        ({"ts": 2**63}, r"Reading\.ts: expected an int within 64 bits"),
        ({"meter_id": b"home-1"}, r"Reading\.meter_id: expected a str, got bytes"),
        ({"meter_id": "\udc80"}, r"Reading\.meter_id: expected a str without lone surrogates"),
        ({"signal_strength": 2**31}, r"Reading\.signal_strength: expected an int within 32 bits"),
        ({"voltage_l1_v": "230"}, r"Reading\.voltage_l1_v: expected a float, got str"),
        ({"voltage_l1": 230.0}, r"Reading: unknown field\(s\) voltage_l1"),
        ({"power_production_w": 10**400}, r"Reading\.power_production_w: expected a float within"),
    ],
)
def test_encode_rejects_what_does_not_fit_and_names_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        CODEC.encode({**VALID, **change})


@pytest.mark.parametrize("field", ["meter_id", "source", "ts", "received_at", "power_w"])
def test_encode_names_a_missing_required_field(field: str) -> None:
    record = {key: value for key, value in VALID.items() if key != field}
    with pytest.raises(EncodeError, match=rf"Reading\.{field}: required field is missing"):
        CODEC.encode(record)


def test_encode_accepts_ints_for_doubles_as_avro_does() -> None:
    assert CODEC.decode(CODEC.encode({**VALID, "power_w": 812}))["power_w"] == 812.0


def test_encode_rejects_a_non_mapping() -> None:
    with pytest.raises(EncodeError, match="Reading: expected a mapping, got list"):
        CODEC.encode([("meter_id", "x")])  # type: ignore[arg-type]


def test_anomaly_score_errors_name_nested_fields() -> None:
    codec = AvroCodec.for_schema("AnomalyScore")
    score: dict[str, Any] = {
        "meter_id": "m",
        "model_id": "worker-a:3f2c",
        "window_start": 0,
        "window_end": 60_000_000,
        "n_readings": 30,
        "features": {"mean_w": 1.0},
        "score": 0.5,
        "is_anomaly": False,
        "attribution": {"mean_w": 0.5},
        "model": {
            "engine": "krcf",
            "num_trees": 30,
            "sample_size": 128,
            "shingle_size": 4,
            "feature_names": ["mean_w"],
            "threshold_kind": "quantile",
        },
        "scored_at": 61_000_000,
    }
    assert codec.decode(codec.encode(score))["threshold"] is None
    with pytest.raises(EncodeError, match=r"AnomalyScore\.features\{\}: expected a float"):
        codec.encode({**score, "features": {"mean_w": "high"}})
    with pytest.raises(EncodeError, match=r"ModelInfo\.feature_names\[\]: expected a str"):
        codec.encode({**score, "model": {**score["model"], "feature_names": [1]}})
    with pytest.raises(EncodeError, match=r"AnomalyScore\.is_anomaly: expected a bool"):
        codec.encode({**score, "is_anomaly": 0})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "null value"),
        (b"", "empty value"),
        (b"\xc3", "unknown framing"),
        (b"\xc3\x01\x00", "single-object header cut short"),
        (b"\x00\x00", "Confluent header cut short"),
        (b'{"meter_id": "home-1"}', "unknown framing: starts with 7b226d65"),
    ],
)
def test_decode_explains_what_is_wrong_with_the_frame(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(data, topic="meter.readings.v1", partition=2, offset=9)
    assert str(caught.value).startswith(f"cannot decode meter.readings.v1[2]@9: {reason}")


def test_unknown_fingerprint_is_an_unknown_schema_error() -> None:
    data = single_object_header(b"\x01" * 8) + CODEC.encode(VALID)[10:]
    with pytest.raises(UnknownSchemaError, match="fingerprint 0101010101010101 is in no released"):
        CODEC.decode(data, topic="t", partition=0, offset=5)


def test_a_confluent_frame_without_registry_asks_for_a_registry_url() -> None:
    data = confluent_header(7) + CODEC.encode(VALID)[10:]
    with pytest.raises(DecodeError, match="needs a schema registry") as caught:
        CODEC.decode(data)
    assert not isinstance(caught.value, UnknownSchemaError)


def test_an_unknown_schema_id_is_an_unknown_schema_error_with_location() -> None:
    codec = AvroCodec.for_schema("Reading", registry=InMemoryRegistry(), subject="r-value")
    data = confluent_header(99) + CODEC.encode(VALID)[10:]
    with pytest.raises(UnknownSchemaError) as caught:
        codec.decode(data, topic="r", partition=1, offset=3)
    assert str(caught.value) == "cannot decode r[1]@3: schema id 99 is unknown"


def test_a_record_of_another_type_is_refused_with_the_reason() -> None:
    score_frame = single_object_header(load_history().latest("AnomalyScore").fingerprint)
    with pytest.raises(DecodeError, match="AnomalyScore v1 cannot be read as Reading"):
        CODEC.decode(score_frame + b"\x00" * 40)


def test_the_codec_reads_its_own_unreleased_schema() -> None:
    draft = {**READING, "fields": [*READING["fields"], _optional("frequency_hz")]}
    codec = AvroCodec(draft)
    assert codec.fingerprint == fingerprint(draft)
    assert load_history().find(codec.fingerprint) is None
    assert codec.decode(codec.encode({**VALID, "frequency_hz": 50.0}))["frequency_hz"] == 50.0
    with pytest.raises(UnknownSchemaError):
        CODEC.decode(codec.encode(VALID))  # ... but nobody else does until it is released


def test_a_registry_codec_needs_a_subject() -> None:
    with pytest.raises(ValueError, match="needs a subject"):
        AvroCodec.for_schema("Reading", registry=InMemoryRegistry())


def test_unknown_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema 'Readings'"):
        AvroCodec.for_schema("Readings")


def _optional(name: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", "double"], "default": None, "doc": "test field"}


def test_a_broken_writer_schema_from_the_registry_is_the_records_fault() -> None:
    registry = InMemoryRegistry()
    codec = AvroCodec.for_schema("Reading", registry=registry, subject="r-value")
    registry.schemas[42] = {
        "type": "record",
        "name": "Reading",
        "fields": [{"name": "meter_id", "type": "no-such-type"}],
    }
    with pytest.raises(DecodeError, match="schema id 42 is not a usable Avro schema"):
        codec.decode(confluent_header(42) + b"\x00")


def test_decode_takes_any_bytes_like_value() -> None:
    data = CODEC.encode(VALID)
    for form in (bytearray(data), memoryview(data)):
        assert CODEC.decode(form)["meter_id"] == "home-1"


def test_numpy_numbers_encode_and_numpy_bools_do_not() -> None:
    numpy = pytest.importorskip("numpy")
    record = {**VALID, "power_w": numpy.float32(812.5), "signal_strength": numpy.int16(-67)}
    decoded = CODEC.decode(CODEC.encode(record))
    assert (decoded["power_w"], decoded["signal_strength"]) == (812.5, -67)
    assert type(decoded["signal_strength"]) is int
    with pytest.raises(EncodeError, match=r"Reading\.power_w: expected a float, got bool"):
        CODEC.encode({**VALID, "power_w": numpy.bool_(True)})
