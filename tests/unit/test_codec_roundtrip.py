"""Property tests: every valid record round-trips exactly; bad bytes raise DecodeError only."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import example, given
from hypothesis import strategies as st

from schemas.codec import AvroCodec
from schemas.encoder import compile_encoder
from schemas.errors import DecodeError
from schemas.loader import load_history, strip_logical_types
from tests.unit.test_schema_strategies import (
    ANOMALY_SCORE,
    MAX_MICROS,
    MIN_MICROS,
    READING,
    InMemoryRegistry,
    anomaly_scores,
    doubles,
    exact,
    readings,
    with_defaults,
)

SINGLE = AvroCodec.for_schema("Reading")
REGISTRY = InMemoryRegistry()
CONFLUENT = AvroCodec.for_schema("Reading", registry=REGISTRY, subject="meter.readings.v1-value")
SCORES = AvroCodec.for_schema("AnomalyScore")
SCORES_CONFLUENT = AvroCodec.for_schema(
    "AnomalyScore", registry=REGISTRY, subject="meter.anomaly-scores.v1-value"
)
BOTH_FRAMINGS = pytest.mark.parametrize("codec", [SINGLE, CONFLUENT], ids=["single", "confluent"])

EXTREME_READING = {
    "meter_id": "zähler-⚡-𝔐",
    "source": "replay",
    "ts": MIN_MICROS,
    "received_at": MAX_MICROS,
    "power_w": float("nan"),
    "power_production_w": float("-inf"),
    "min_power_w": -0.0,
    "signal_strength": -(2**31),
    "currency": "",
}


@given(readings)
@example(EXTREME_READING)
def test_reading_round_trips_exactly_single_object(record: dict[str, Any]) -> None:
    decoded = SINGLE.decode(SINGLE.encode(record))
    assert exact(decoded) == exact(with_defaults(READING, record))


@given(readings)
@example(EXTREME_READING)
def test_reading_round_trips_exactly_confluent(record: dict[str, Any]) -> None:
    data = CONFLUENT.encode(record)
    assert data[:5] == b"\x00" + (CONFLUENT.schema_id or 0).to_bytes(4, "big")
    assert exact(CONFLUENT.decode(data)) == exact(with_defaults(READING, record))


@given(readings)
def test_each_codec_reads_the_other_framing(record: dict[str, Any]) -> None:
    expected = exact(with_defaults(READING, record))
    assert exact(CONFLUENT.decode(SINGLE.encode(record))) == expected
    assert exact(SINGLE.decode(SINGLE.encode(record))) == expected


@given(anomaly_scores)
def test_anomaly_score_round_trips_exactly(record: dict[str, Any]) -> None:
    for codec in (SCORES, SCORES_CONFLUENT):
        decoded = codec.decode(codec.encode(record))
        assert exact(decoded) == exact(with_defaults(ANOMALY_SCORE, record))


_FASTAVRO_READING = parse_schema(strip_logical_types(READING))
_FASTAVRO_SCORE = parse_schema(strip_logical_types(ANOMALY_SCORE))
_ENCODE_READING = compile_encoder(strip_logical_types(READING))
_ENCODE_SCORE = compile_encoder(strip_logical_types(ANOMALY_SCORE))


def _fastavro_bytes(schema: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


@given(readings)
def test_our_encoder_writes_the_same_bytes_as_fastavro(record: dict[str, Any]) -> None:
    assert _ENCODE_READING(record) == _fastavro_bytes(_FASTAVRO_READING, record)


@given(anomaly_scores)
def test_our_encoder_writes_the_same_scores_as_fastavro(record: dict[str, Any]) -> None:
    assert _ENCODE_SCORE(record) == _fastavro_bytes(_FASTAVRO_SCORE, record)


@given(readings, st.sampled_from([SINGLE, CONFLUENT]))
def test_every_prefix_of_a_frame_raises_decode_error(
    record: dict[str, Any], codec: AvroCodec
) -> None:
    data = codec.encode(record)
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:end])


@given(readings, st.sampled_from([SINGLE, CONFLUENT]), st.binary(min_size=1, max_size=8))
def test_stray_bytes_after_a_record_raise_decode_error(
    record: dict[str, Any], codec: AvroCodec, extra: bytes
) -> None:
    with pytest.raises(DecodeError, match="stray bytes"):
        codec.decode(codec.encode(record) + extra)


def _decodes_or_raises_decode_error(codec: AvroCodec, data: bytes) -> None:
    try:
        decoded = codec.decode(data, topic="t", partition=0, offset=7)
    except DecodeError as exc:
        message = str(exc)
    else:
        codec.encode(decoded)  # whatever decodes must be a valid record
        return
    assert message.startswith("cannot decode t[0]@7: ")


@given(st.binary(max_size=300))
@example(b"")
@example(b"\xc3")
@example(b"\x00\x00\x00")
def test_random_bytes_raise_decode_error_and_nothing_else(data: bytes) -> None:
    for codec in (SINGLE, CONFLUENT, SCORES):
        _decodes_or_raises_decode_error(codec, data)


@BOTH_FRAMINGS
@given(body=st.binary(max_size=300))
@example(body=b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f")  # string length 2**62: no MemoryError
@example(body=b"\x0c\xff\xfe\xfd\xfc\xfb\xfa")  # 6 bytes of invalid UTF-8
@example(body=b"\x01")  # negative length
@example(body=b"\x80" * 12)  # a varint that never ends
def test_random_body_behind_a_valid_header_raises_decode_error(
    codec: AvroCodec, body: bytes
) -> None:
    header = codec.encode(EXTREME_READING)[: 10 if codec is SINGLE else 5]
    _decodes_or_raises_decode_error(codec, header + body)


@given(readings, st.data())
def test_flipped_bytes_raise_decode_error_or_decode_to_a_valid_record(
    record: dict[str, Any], data: st.DataObject
) -> None:
    frame = bytearray(SINGLE.encode(record))
    position = data.draw(st.integers(10, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    _decodes_or_raises_decode_error(SINGLE, bytes(frame))


# A second released version in memory: older readers resolve it through fastavro.
READING_V2 = {
    **READING,
    "fields": [
        *READING["fields"],
        {"name": "frequency_hz", "type": ["null", "double"], "default": None, "doc": "grid, Hz"},
    ],
}
EVOLVED = load_history().with_release("Reading", READING_V2)
V1_READER = AvroCodec(READING, history=EVOLVED)
V2_WRITER = AvroCodec(READING_V2, history=EVOLVED)


@given(readings, st.none() | doubles)
def test_versions_resolve_both_ways_exactly(record: dict[str, Any], frequency: Any) -> None:
    from_v2 = V1_READER.decode(V2_WRITER.encode({**record, "frequency_hz": frequency}))
    assert exact(from_v2) == exact(with_defaults(READING, record))
    from_v1 = V2_WRITER.decode(V1_READER.encode(record))
    assert exact(from_v1) == exact(with_defaults(READING_V2, record))


@given(readings)
def test_every_prefix_of_a_newer_version_raises_decode_error(record: dict[str, Any]) -> None:
    data = V2_WRITER.encode({**record, "frequency_hz": 50.0})
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            V1_READER.decode(data[:end])


@given(st.binary(max_size=300))
@example(b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f")
@example(b"\x0c\xff\xfe\xfd\xfc\xfb\xfa")
def test_random_body_of_a_newer_version_raises_decode_error(body: bytes) -> None:
    header = V2_WRITER.encode(EXTREME_READING)[:10]
    _decodes_or_raises_decode_error(V1_READER, header + body)
