"""Encode and decode one record type: Avro binary inside one of two framings.

Without a registry the codec writes Avro single-object frames (``C3 01`` + fingerprint); with a
registry it writes Confluent frames (``00`` + schema id). It reads both, whatever it writes:
the writer schema comes from the packaged history (by fingerprint) or from the registry (by id)
and is resolved against this codec's schema by Avro's schema-resolution rules, so a reader reads
every released version. Timestamps stay int microseconds (see :mod:`schemas.timestamps`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader

from schemas.compat import check_can_read
from schemas.decoder import Reader, Unsupported, compile_decoder
from schemas.encoder import compile_encoder
from schemas.errors import DecodeError, UnknownSchemaError
from schemas.framing import (
    FramingError,
    confluent_header,
    read_header,
    single_object_header,
)
from schemas.loader import (
    SchemaHistory,
    SchemaVersion,
    canonical_form,
    current_schema,
    load_history,
    strip_logical_types,
)
from schemas.registry import FULL_TRANSITIVE, SchemaRegistry


@dataclass(frozen=True, slots=True)
class _WriterPlan:
    """How to read bodies of one writer version, worked out once per version."""

    label: str
    # Our compiled reader of the writer's layout: the result when the writer is the codec's
    # own schema, else a strict check of the body (fastavro skips unread fields without
    # noticing that they are cut short). None where compile_decoder leaves a shape to fastavro.
    read_writer: Reader | None
    # fastavro (writer, reader) schemas for Avro schema resolution, for other versions.
    resolve: tuple[Any, Any] | None
    problem: str | None = None  # set when this writer cannot be read as the codec's record
    problem_type: type[DecodeError] = DecodeError


class AvroCodec:
    """Encoder and decoder for one record type (``Reading``, ``AnomalyScore``).

    Build it once per process and reuse it: schemas are parsed, the encoder compiled and every
    writer version resolved once, then cached.

    Parameters
    ----------
    schema:
        The record schema this codec writes, and reads into.
    history:
        Released versions that single-object frames may name; defaults to the packaged
        ``schemas/history``. The codec's own schema is always readable.
    registry, subject:
        With a registry, the schema is registered under ``subject`` (the TopicNameStrategy
        subject ``<topic>-value``), which is first set to ``FULL_TRANSITIVE``, and records are
        written in Confluent framing. Without one, ``subject`` is ignored.

    Examples
    --------
    >>> codec = AvroCodec.for_schema("Reading")
    >>> data = codec.encode({"meter_id": "home-1", "source": "simulator",
    ...                      "ts": 1_700_000_000_000_000, "received_at": 1_700_000_000_250_000,
    ...                      "power_w": 812.5})
    >>> data[:2].hex(), len(data)
    ('c301', 77)
    >>> record = codec.decode(data)
    >>> record["ts"], record["power_w"], record["voltage_l1_v"]
    (1700000000000000, 812.5, None)
    >>> codec.decode(data[:-1], topic="meter.readings.v1", partition=3, offset=1042)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    schemas.errors.DecodeError: cannot decode meter.readings.v1[3]@1042: Reading v1 body ...
    >>> codec.encode({"meter_id": "home-1", "source": "simulator", "ts": 1.5e15})
    Traceback (most recent call last):
    ...
    schemas.errors.EncodeError: Reading.ts: expected an int within 64 bits, got float 1500000000000000.0
    """

    def __init__(
        self,
        schema: dict[str, Any],
        *,
        history: SchemaHistory | None = None,
        registry: SchemaRegistry | None = None,
        subject: str | None = None,
    ) -> None:
        self.schema = schema
        self.name = str(schema["name"]).rpartition(".")[2]
        self._history = history if history is not None else load_history()
        stripped = strip_logical_types(schema)
        self._encode_body = compile_encoder(stripped)
        self._reader = parse_schema(stripped)
        self._fast = _compile_fast_reader(stripped)
        self._canonical = canonical_form(schema)
        own = SchemaVersion.of(self.name, 0, schema)
        released = self._history.find(own.fingerprint)
        own_label = released.label if released else f"{self.name} (unreleased)"
        own_plan = self._plan_for_same(own_label, self._reader)
        self.fingerprint = own.fingerprint
        # Writer versions seen so far, by fingerprint (bytes) or registry id (int).
        self._plans: dict[bytes | int, _WriterPlan] = {own.fingerprint: own_plan}
        self._registry = registry
        self.subject: str | None = None
        self.schema_id: int | None = None
        if registry is None:
            self._header = single_object_header(own.fingerprint)
            return
        if not subject:
            raise ValueError("a codec with a registry needs a subject, e.g. value_subject(topic)")
        # Compatibility first, so the registration below is already checked against it.
        registry.set_compatibility(subject, FULL_TRANSITIVE)
        self.schema_id = registry.register(subject, json.dumps(schema))
        self.subject = subject
        self._plans[self.schema_id] = own_plan
        self._header = confluent_header(self.schema_id)

    @classmethod
    def for_schema(
        cls,
        name: str,
        *,
        registry: SchemaRegistry | None = None,
        subject: str | None = None,
        history: SchemaHistory | None = None,
    ) -> AvroCodec:
        """A codec for the packaged current schema ``name`` (``"Reading"``, ``"AnomalyScore"``)."""
        return cls(current_schema(name), history=history, registry=registry, subject=subject)

    def __repr__(self) -> str:
        where = f"registry subject {self.subject!r}" if self.subject else "single-object"
        return f"<AvroCodec {self.name} ({where})>"

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Frame and encode ``record``; raises EncodeError naming the field that does not fit."""
        return self._encode_body(record, self._header)

    def decode(
        self,
        data: bytes | bytearray | memoryview | None,
        *,
        topic: str = "?",
        partition: int = -1,
        offset: int = -1,
    ) -> dict[str, Any]:
        """Decode one framed record into a dict with every field of this codec's schema.

        Raises DecodeError (UnknownSchemaError for an unknown writer) for anything that is not a
        valid record, carrying the location for the log and the dead-letter headers; a registry
        that cannot be reached raises RegistryError instead, as that is no fault of the record.
        """
        try:
            return self._decode(data)
        except DecodeError as exc:
            raise exc.located(topic, partition, offset) from exc.__cause__
        except FramingError as exc:
            raise DecodeError(str(exc), topic=topic, partition=partition, offset=offset) from exc

    def _decode(self, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        if data is None:
            raise DecodeError("null value (a tick or a tombstone? check headers before decoding)")
        if type(data) is not bytes:
            data = bytes(data)  # bytearray, memoryview: the readers slice and decode bytes
        _, key, body_start = read_header(data)
        plan = self._plans.get(key) or self._new_plan(key)
        if plan.problem is not None:
            raise plan.problem_type(plan.problem)
        try:
            if plan.read_writer is not None:
                record, end = plan.read_writer(data, body_start)
            if plan.resolve is not None:
                stream = BytesIO(data)
                stream.seek(body_start)
                record = schemaless_reader(stream, *plan.resolve)
                if plan.read_writer is None:
                    end = stream.tell()
        except Exception as exc:
            # Bad bytes surface as EOFError, IndexError, struct.error, UnicodeDecodeError,
            # ValueError, ... depending on where they stop making sense.
            raise DecodeError(
                f"{plan.label} body is corrupt or cut short ({type(exc).__name__}: {exc})"
            ) from exc
        if end != len(data):
            raise DecodeError(f"{len(data) - end} stray bytes after the {plan.label} record")
        # A string type: `dict[str, Any]` would build a generic alias on every record.
        return cast("dict[str, Any]", record)  # a record schema always reads into a dict

    def _new_plan(self, key: bytes | int) -> _WriterPlan:
        """Work out (and cache) how to read a writer version met for the first time.

        An unknown writer is cached too: a stream of records from a writer nobody knows must
        not cost one registry call per record. A RegistryError is not: it may pass.
        """
        try:
            if isinstance(key, bytes):
                plan = self._plan_from_history(key)
            else:
                plan = self._plan_from_registry(key)
        except UnknownSchemaError as exc:
            plan = _WriterPlan("unknown", None, None, exc.reason, UnknownSchemaError)
        self._plans[key] = plan
        return plan

    def _plan_from_history(self, fingerprint: bytes) -> _WriterPlan:
        version = self._history.find(fingerprint)
        if version is None:
            raise UnknownSchemaError(
                f"writer fingerprint {fingerprint.hex()} is in no released schema here"
                " (written by a newer release? deploy it, then replay the dead letters)"
            )
        return self._plan(version.schema, version.label)

    def _plan_from_registry(self, schema_id: int) -> _WriterPlan:
        if self._registry is None:
            raise DecodeError(
                f"Confluent-framed record (schema id {schema_id}) needs a schema registry:"
                " set the registry URL (METERSTREAM_SCHEMA_REGISTRY_URL)"
            )
        return self._plan(self._registry.schema_for_id(schema_id), f"schema id {schema_id}")

    def _plan(self, writer_schema: dict[str, Any], label: str) -> _WriterPlan:
        """Resolve a writer version against this codec's schema, once per version."""
        try:
            problems = check_can_read(self.schema, writer_schema)
            stripped = strip_logical_types(writer_schema)
            writer = parse_schema(stripped)
            if problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                problem = f"{label} cannot be read as {self.name}: {problems[0]}{more}"
                return _WriterPlan(label, None, None, problem=problem)
            if canonical_form(writer_schema) == self._canonical:
                return self._plan_for_same(label, writer)
            return _WriterPlan(label, _compile_fast_reader(stripped), (writer, self._reader))
        except Exception as exc:  # a registry can hand out anything: it is the record's fault
            raise DecodeError(f"{label} is not a usable Avro schema: {exc}") from exc

    def _plan_for_same(self, label: str, writer: Any) -> _WriterPlan:
        """A writer with the codec's own canonical form: no resolution needed."""
        if self._fast is not None:
            return _WriterPlan(label, self._fast, None)
        return _WriterPlan(label, None, (writer, None))


def _compile_fast_reader(stripped_schema: dict[str, Any]) -> Reader | None:
    try:
        return compile_decoder(stripped_schema)
    except Unsupported:
        return None  # fastavro reads every version then
