"""Schema compatibility by the Avro spec's resolution rules (fastavro has no checker).

``check_can_read(reader, writer)`` answers "can data written with ``writer`` be read with
``reader``?" and lists every problem, each naming the field path. ``check_full_transitive``
applies it to every ordered pair of released versions: old readers read new data (forward) and
new readers read old data (backward), across all versions, the policy the registry enforces as
``FULL_TRANSITIVE``.

The rules, from the spec's "Schema Resolution" section:

* primitives match themselves, plus the promotions int→long/float/double, long→float/double,
  float→double, string↔bytes; logical types are ignored (they do not change the encoding);
* records, enums and fixed match by unqualified name, or when a reader alias names the writer;
* record fields pair up by name or reader alias; a reader field the writer lacks needs a
  default; writer fields the reader lacks are skipped;
* enums: every writer symbol must be a reader symbol unless the reader declares a default;
* fixed: equal size; arrays and maps: items and values resolve recursively;
* a writer union: every branch must be readable; a reader union: the first branch that matches
  the writer's type is used and must resolve.

>>> old = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
>>> new = {"type": "record", "name": "R", "fields": [
...     {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}
>>> check_can_read(new, old)
['R.b: missing in the writer (by name and aliases) and the reader has no default']
>>> check_can_read(old, new)
['R.a: writer type long cannot be read as int']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from schemas.loader import AvroSchema

_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_NAMED: Final = frozenset({"record", "error", "enum", "fixed"})
_COMPLEX: Final = _NAMED | {"array", "map"}

# writer type -> reader types that can read it, beyond the same type
_PROMOTIONS: Final = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def check_can_read(reader: AvroSchema, writer: AvroSchema) -> list[str]:
    """Problems reading ``writer`` data with ``reader``; empty means compatible."""
    checker = _Checker(_NameTable(reader), _NameTable(writer))
    checker.check(reader, "", writer, "", _root_label(reader))
    return checker.problems


def check_full_transitive(history: Sequence[AvroSchema]) -> list[str]:
    """Problems between any two versions in ``history`` (oldest first), both directions."""
    problems: list[str] = []
    for r, reader in enumerate(history, start=1):
        for w, writer in enumerate(history, start=1):
            if r != w:
                problems += [f"v{r} reading v{w}: {p}" for p in check_can_read(reader, writer)]
    return problems


def _root_label(schema: AvroSchema) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"]).rpartition(".")[2]
    return "<root>"


def _fullname(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _NameTable:
    """Every named type in one schema by full name, with the namespace its children inherit."""

    def __init__(self, schema: AvroSchema) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self._collect(schema, "")

    def _collect(self, schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in _NAMED:
            fullname = _fullname(str(schema["name"]), str(schema.get("namespace", namespace)))
            self.types[fullname] = schema
            namespace = fullname.rpartition(".")[0]
        for field in schema.get("fields", ()):
            self._collect(field["type"], namespace)
        for key in ("items", "values"):
            if key in schema:
                self._collect(schema[key], namespace)
        if isinstance(kind, dict | list):
            self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str) -> tuple[Any, str]:
        """Follow a name reference; returns the node and the namespace its own names use."""
        inner = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(inner, dict | list) or (
            isinstance(inner, str) and inner not in _PRIMITIVES and inner not in _COMPLEX
        ):
            return self.resolve(inner, namespace)  # {"type": {...}} or {"type": "Name"}
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            for candidate in (_fullname(schema, namespace), schema):
                if candidate in self.types:
                    return self.types[candidate], candidate.rpartition(".")[0]
            raise ValueError(f"unknown type name {schema!r}")
        if isinstance(schema, dict) and schema.get("type") in _NAMED:
            name = _fullname(str(schema["name"]), str(schema.get("namespace", namespace)))
            return schema, name.rpartition(".")[0]
        return schema, namespace


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return str(schema["type"])


def _describe(schema: Any) -> str:
    kind = _kind(schema)
    return f"{kind} {schema['name']}" if kind in _NAMED else kind


class _Checker:
    def __init__(self, reader_names: _NameTable, writer_names: _NameTable) -> None:
        self._reader_names = reader_names
        self._writer_names = writer_names
        self._in_progress: set[tuple[int, int]] = set()  # recursive types: assume fine
        self.problems: list[str] = []

    def check(self, reader: Any, r_ns: str, writer: Any, w_ns: str, path: str) -> None:
        reader, r_ns = self._reader_names.resolve(reader, r_ns)
        writer, w_ns = self._writer_names.resolve(writer, w_ns)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if w_kind == "union":
            for branch in writer:
                self.check(reader, r_ns, branch, w_ns, path)
        elif r_kind == "union":
            chosen = next((b for b in reader if self._matches(b, r_ns, writer, w_ns)), None)
            if chosen is None:
                branches = [_describe(self._reader_names.resolve(b, r_ns)[0]) for b in reader]
                self._problem(
                    path, f"writer type {_describe(writer)} matches no reader branch {branches}"
                )
            else:
                self.check(chosen, r_ns, writer, w_ns, path)
        elif r_kind != w_kind:
            if r_kind not in _PROMOTIONS.get(w_kind, ()):
                self._problem(
                    path, f"writer type {_describe(writer)} cannot be read as {_describe(reader)}"
                )
        elif r_kind in _NAMED and not _names_match(reader, r_ns, writer, w_ns):
            self._problem(
                path,
                f"writer {_describe(writer)} cannot be read as {_describe(reader)}"
                " (another name, and no reader alias names it)",
            )
        else:
            self._check_same_kind(reader, r_ns, writer, w_ns, path)

    def _check_same_kind(self, reader: Any, r_ns: str, writer: Any, w_ns: str, path: str) -> None:
        kind = _kind(reader)
        if kind in ("record", "error"):
            self._check_record(reader, r_ns, writer, w_ns, path)
        elif kind == "enum":
            self._check_enum(reader, writer, path)
        elif kind == "fixed" and reader["size"] != writer["size"]:
            self._problem(path, f"fixed size {writer['size']} cannot be read as {reader['size']}")
        elif kind == "array":
            self.check(reader["items"], r_ns, writer["items"], w_ns, path + "[]")
        elif kind == "map":
            self.check(reader["values"], r_ns, writer["values"], w_ns, path + "{}")

    def _matches(self, reader: Any, r_ns: str, writer: Any, w_ns: str) -> bool:
        """The spec's shallow test for picking a reader union branch."""
        reader, r_ns = self._reader_names.resolve(reader, r_ns)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if r_kind == w_kind:
            return r_kind not in _NAMED or _names_match(reader, r_ns, writer, w_ns)
        return r_kind in _PROMOTIONS.get(w_kind, ())

    def _check_record(
        self, reader: dict[str, Any], r_ns: str, writer: dict[str, Any], w_ns: str, path: str
    ) -> None:
        key = (id(reader), id(writer))
        if key in self._in_progress:
            return
        self._in_progress.add(key)
        writer_fields = {str(f["name"]): f for f in writer["fields"]}
        for field in reader["fields"]:
            name = str(field["name"])
            field_path = f"{path}.{name}"
            candidates = [name, *field.get("aliases", ())]
            match = next((writer_fields[c] for c in candidates if c in writer_fields), None)
            if match is not None:
                self.check(field["type"], r_ns, match["type"], w_ns, field_path)
            elif "default" not in field:
                self._problem(
                    field_path,
                    "missing in the writer (by name and aliases) and the reader has no default",
                )
        self._in_progress.discard(key)

    def _check_enum(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        unknown = [s for s in writer["symbols"] if s not in set(reader["symbols"])]
        if unknown and "default" not in reader:
            self._problem(
                path, f"enum symbols {unknown} unknown to the reader, which has no default"
            )

    def _problem(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")


def _names_match(reader: dict[str, Any], r_ns: str, writer: dict[str, Any], w_ns: str) -> bool:
    reader_short = str(reader["name"]).rpartition(".")[2]
    writer_short = str(writer["name"]).rpartition(".")[2]
    if reader_short == writer_short:
        return True
    writer_full = _fullname(str(writer["name"]), w_ns)
    aliases = {_fullname(str(a), r_ns) for a in reader.get("aliases", ())}
    return writer_full in aliases or writer_short in {a.rpartition(".")[2] for a in aliases}
