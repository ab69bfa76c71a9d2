"""The two byte framings around an Avro body, and how to tell them apart. Pure, no I/O.

* **Single-object encoding** (Avro spec): ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO
  fingerprint (little-endian) + Avro binary. Used when no registry is configured.
* **Confluent wire format**: ``00`` + 4-byte big-endian schema id + Avro binary. Used with a
  schema registry.

The first byte decides: ``C3`` can never start a Confluent frame and ``00`` never a single-object
frame.

>>> frame = single_object_header(bytes(range(8))) + b"body"
>>> header = read_header(frame)
>>> header.kind, header.key, frame[header.body_start:]
(<FrameKind.SINGLE_OBJECT: 'single-object'>, b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07', b'body')
>>> read_header(confluent_header(7) + b"body").key
7
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

SINGLE_OBJECT_MAGIC: Final = b"\xc3\x01"
CONFLUENT_MAGIC: Final = b"\x00"
FINGERPRINT_SIZE: Final = 8
SINGLE_OBJECT_HEADER_SIZE: Final = len(SINGLE_OBJECT_MAGIC) + FINGERPRINT_SIZE
CONFLUENT_HEADER_SIZE: Final = 1 + 4
MAX_SCHEMA_ID: Final = 2**31 - 1  # registries hand out positive signed 32-bit ids


class FrameKind(enum.Enum):
    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


class FramingError(ValueError):
    """The bytes do not start with a frame header we know (the codec turns it into DecodeError)."""


class FrameHeader(NamedTuple):
    """What the header says: which framing, the schema key, and where the Avro body starts."""

    kind: FrameKind
    key: bytes | int  # fingerprint for single-object frames, schema id for Confluent frames
    body_start: int


def single_object_header(fingerprint: bytes) -> bytes:
    if len(fingerprint) != FINGERPRINT_SIZE:
        raise ValueError(f"a CRC-64-AVRO fingerprint has {FINGERPRINT_SIZE} bytes")
    return SINGLE_OBJECT_MAGIC + fingerprint


def confluent_header(schema_id: int) -> bytes:
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema id {schema_id} is outside 0..{MAX_SCHEMA_ID}")
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")


def read_header(data: bytes) -> FrameHeader:
    """Split off the frame header; raises :class:`FramingError` on anything else."""
    if data[:2] == SINGLE_OBJECT_MAGIC:
        if len(data) < SINGLE_OBJECT_HEADER_SIZE:
            raise FramingError(f"single-object header cut short ({len(data)} bytes)")
        return FrameHeader(FrameKind.SINGLE_OBJECT, bytes(data[2:10]), SINGLE_OBJECT_HEADER_SIZE)
    if data[:1] == CONFLUENT_MAGIC:
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise FramingError(f"Confluent header cut short ({len(data)} bytes)")
        return FrameHeader(FrameKind.CONFLUENT, int.from_bytes(data[1:5], "big"), 5)
    if not data:
        raise FramingError("empty value (a tick or a tombstone? check headers before decoding)")
    raise FramingError(
        f"unknown framing: starts with {bytes(data[:4]).hex()}, expected c301 (single-object)"
        " or 00 (Confluent)"
    )
