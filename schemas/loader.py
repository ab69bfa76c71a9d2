"""Load the packaged Avro schemas, their released history and their CRC-64-AVRO fingerprints.

Layout (package data, see ``pyproject.toml``)::

    schemas/avro/<Name>.avsc           the current schema, what producers write
    schemas/history/<Name>/<n>.avsc    every released version, n = 1, 2, ...

A reader resolves a single-object frame's fingerprint against the whole history, so it can
read any version ever released. Files are parsed once per process (package data never changes
while we run).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final, TypeAlias

from fastavro.schema import fingerprint as _fingerprint_hex
from fastavro.schema import parse_schema, to_parsing_canonical_form

# An Avro schema as JSON: a record/enum/... object, a union list, or a primitive/named reference.
AvroSchema: TypeAlias = dict[str, Any] | list[Any] | str

SCHEMA_NAMES: Final = ("Reading", "AnomalyScore")

_PACKAGE: Final = __package__ or "schemas"


def _package_dir() -> Traversable:
    return files(_PACKAGE)


def load_schema_text(text: str) -> dict[str, Any]:
    """Parse an ``.avsc`` document and check it is a valid Avro record schema."""
    schema = json.loads(text)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("a message schema must be an Avro record")
    # fastavro rejects unknown types, bad names and defaults that do not match their type.
    parse_schema(schema)
    return schema


def current_schema(name: str) -> dict[str, Any]:
    """The current (newest) schema of the record ``name``, e.g. ``"Reading"``.

    A fresh copy each call: callers may change it (tests build new versions from it).
    """
    return copy.deepcopy(_current_schema(name))


@cache
def _current_schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return load_schema_text((_package_dir() / "avro" / f"{name}.avsc").read_text("utf-8"))


def canonical_form(schema: AvroSchema) -> str:
    """The Parsing Canonical Form: the schema with doc, defaults, aliases and order removed."""
    return str(to_parsing_canonical_form(schema))


def fingerprint(schema: AvroSchema) -> bytes:
    """CRC-64-AVRO fingerprint of the canonical form, as the 8 little-endian bytes on the wire."""
    # fastavro already returns the hex of the little-endian bytes, as Java's
    # SchemaNormalization and the single-object encoding lay them out.
    return bytes.fromhex(_fingerprint_hex(canonical_form(schema), "CRC-64-AVRO"))


def strip_logical_types(schema: Any) -> Any:
    """A copy of ``schema`` without ``logicalType`` annotations.

    The contract keeps timestamps as int microseconds: ``timestamp-micros`` is a plain long on
    the wire, so reading and writing through the stripped copy skips datetime conversion.
    Default values are copied as they are, even if they happen to hold such a key.
    """
    if isinstance(schema, list):
        return [strip_logical_types(branch) for branch in schema]
    if isinstance(schema, dict):
        return {
            key: value if key == "default" else strip_logical_types(value)
            for key, value in schema.items()
            if key != "logicalType"
        }
    return schema


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of a record schema."""

    name: str
    version: int
    schema: dict[str, Any]
    fingerprint: bytes

    @classmethod
    def of(cls, name: str, version: int, schema: dict[str, Any]) -> SchemaVersion:
        return cls(name, version, schema, fingerprint(schema))

    @property
    def label(self) -> str:
        """Human-readable name for messages, e.g. ``Reading v2``."""
        return f"{self.name} v{self.version}"


class SchemaHistory:
    """Every released version of every record, findable by name or fingerprint.

    >>> history = load_history()
    >>> [v.label for v in history.versions("Reading")]
    ['Reading v1']
    >>> history.latest("Reading").schema == current_schema("Reading")
    True
    """

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._versions = tuple(sorted(versions, key=lambda v: (v.name, v.version)))
        self._by_fingerprint = {v.fingerprint: v for v in self._versions}

    def __iter__(self) -> Iterator[SchemaVersion]:
        return iter(self._versions)

    def names(self) -> list[str]:
        return sorted({v.name for v in self._versions})

    def versions(self, name: str) -> list[SchemaVersion]:
        """Released versions of ``name``, oldest first."""
        return [v for v in self._versions if v.name == name]

    def latest(self, name: str) -> SchemaVersion:
        found = self.versions(name)
        if not found:
            raise KeyError(f"no released version of {name!r}")
        return found[-1]

    def find(self, fingerprint: bytes) -> SchemaVersion | None:
        """The released version whose canonical form has this fingerprint, if any."""
        return self._by_fingerprint.get(fingerprint)

    def with_release(self, name: str, schema: dict[str, Any]) -> SchemaHistory:
        """A copy with ``schema`` added as the next version of ``name`` (for tests and tools)."""
        next_version = len(self.versions(name)) + 1
        return SchemaHistory([*self._versions, SchemaVersion.of(name, next_version, schema)])


def load_history() -> SchemaHistory:
    """The packaged history: ``schemas/history/<Name>/<n>.avsc`` for every record name."""
    return _load_history()


@cache
def _load_history() -> SchemaHistory:
    root = _package_dir() / "history"
    return SchemaHistory(_read_history_dir(root))


def _read_history_dir(root: Traversable) -> Sequence[SchemaVersion]:
    found: list[SchemaVersion] = []
    for name_dir in root.iterdir():
        if not name_dir.is_dir() or name_dir.name.startswith(("_", ".")):
            continue
        for entry in name_dir.iterdir():
            stem, _, suffix = entry.name.partition(".")
            if suffix != "avsc":
                continue
            if not stem.isdigit():
                raise ValueError(f"history file {name_dir.name}/{entry.name} must be <n>.avsc")
            schema = load_schema_text(entry.read_text("utf-8"))
            found.append(SchemaVersion.of(name_dir.name, int(stem), schema))
    return found
