"""Avro binary decoding for the common case, compiled once per schema into Python closures.

When a record was written with the very schema the codec reads into (same canonical form),
no schema resolution is needed, and these closures read it about 1.5 times as fast as
``fastavro.schemaless_reader`` on a Reading (see ``bench/codec.py``). Every other writer
version goes through fastavro, which implements resolution. Tests check that both decoders
agree on every valid record.

Bad input raises whatever Python raises on it (IndexError at the end of the bytes,
struct.error, UnicodeDecodeError, ValueError); the codec turns all of it into DecodeError.
Lengths are checked against the bytes left, so a forged length never allocates memory.

>>> read = compile_decoder({"type": "record", "name": "P", "fields": [
...     {"name": "w", "type": "double"},
...     {"name": "n", "type": ["null", "int"], "default": None}]})
>>> read(b"\\x00\\x00\\x00\\x00\\x00\\x00\\xf0?\\x02\\x54", 0)
({'w': 1.0, 'n': 42}, 10)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

Reader = Callable[[bytes, int], tuple[Any, int]]

_MAX_VARINT_SHIFT: Final = 63  # a long has at most 10 varint bytes (shifts 0, 7, ..., 63)
_unpack_float = struct.Struct("<f").unpack_from
_unpack_double = struct.Struct("<d").unpack_from


class Unsupported(Exception):
    """The schema uses a shape this decoder leaves to fastavro."""


def compile_decoder(schema: Any) -> Reader:
    """Compile ``schema`` (logical types stripped) into ``read(data, position)``.

    Raises :class:`Unsupported` for arrays or maps whose items can take zero bytes (a forged
    item count could then spin without consuming input); use fastavro for those.
    """
    return _Compiler().compile(schema, _namespace_of(schema))


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint: returns the value and the position after it."""
    byte = data[pos]
    if byte < 0x80:  # one byte: most union indexes, lengths and small ints
        return (byte >> 1) ^ -(byte & 1), pos + 1
    value = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), pos + 1
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise ValueError("varint longer than 10 bytes")


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    length, pos = read_long(data, pos)
    if length < 0 or pos + length > len(data):
        raise ValueError(f"length {length} at byte {pos} does not fit the {len(data)} bytes")
    return length, pos


def _read_null(data: bytes, pos: int) -> tuple[Any, int]:
    return None, pos


def _read_boolean(data: bytes, pos: int) -> tuple[Any, int]:
    byte = data[pos]
    if byte > 1:
        raise ValueError(f"boolean byte {byte} is neither 0 nor 1")
    return byte == 1, pos + 1


def _read_int(data: bytes, pos: int) -> tuple[Any, int]:
    value, pos = read_long(data, pos)
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"int {value} does not fit 32 bits")
    return value, pos


def _read_long(data: bytes, pos: int) -> tuple[Any, int]:
    value, pos = read_long(data, pos)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"long {value} does not fit 64 bits")
    return value, pos


def _read_float(data: bytes, pos: int) -> tuple[Any, int]:
    return _unpack_float(data, pos)[0], pos + 4


def _read_double(data: bytes, pos: int) -> tuple[Any, int]:
    return _unpack_double(data, pos)[0], pos + 8


def _read_bytes(data: bytes, pos: int) -> tuple[Any, int]:
    length, pos = _read_length(data, pos)
    return data[pos : pos + length], pos + length


def _read_string(data: bytes, pos: int) -> tuple[Any, int]:
    length, pos = _read_length(data, pos)
    return data[pos : pos + length].decode(), pos + length


def _read_nullable_double(data: bytes, pos: int) -> tuple[Any, int]:
    # The most common field of a Reading, so it gets its own reader.
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch == 2:
        return _unpack_double(data, pos + 1)[0], pos + 9
    raise ValueError(f"union branch byte {branch} is not 0 (null) or 2 (double)")


_PRIMITIVES: Final[dict[str, tuple[Reader, int]]] = {
    # name: (reader, fewest bytes one value takes)
    "null": (_read_null, 0),
    "boolean": (_read_boolean, 1),
    "int": (_read_int, 1),
    "long": (_read_long, 1),
    "float": (_read_float, 4),
    "double": (_read_double, 8),
    "bytes": (_read_bytes, 1),
    "string": (_read_string, 1),
}


def _name_of(schema: dict[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    space = str(schema.get("namespace", namespace))
    return name if "." in name or not space else f"{space}.{name}"


def _namespace_of(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return _name_of(schema, "").rpartition(".")[0]
    return ""


class _Compiler:
    def __init__(self) -> None:
        self._readers: dict[str, Reader] = {}
        self._min_sizes: dict[str, int] = {}

    def compile(self, schema: Any, namespace: str) -> Reader:
        return self._compile(schema, namespace)[0]

    def _compile(self, schema: Any, namespace: str) -> tuple[Reader, int]:
        """A reader for ``schema`` and the fewest bytes one of its values takes."""
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if isinstance(schema, str):
            return self._by_name(schema, namespace)
        kind = schema["type"]
        if kind in ("array", "map"):
            return self._container(kind, schema, namespace)
        named = {"record": self._record, "error": self._record, "enum": self._enum}
        compile_named = named.get(kind, self._fixed if kind == "fixed" else None)
        if compile_named is not None:
            return compile_named(schema, namespace)
        return self._compile(kind, namespace)  # {"type": "long", ...}

    def _by_name(self, name: str, namespace: str) -> tuple[Reader, int]:
        if name in _PRIMITIVES:
            return _PRIMITIVES[name]
        for candidate in (f"{namespace}.{name}" if namespace else name, name):
            if candidate in self._readers:
                return self._readers[candidate], self._min_sizes[candidate]
        raise Unsupported(f"unknown type {name!r}")

    def _declare(self, fullname: str) -> None:
        readers = self._readers

        # A placeholder first, so recursive references reach the finished reader.
        def late(data: bytes, pos: int) -> tuple[Any, int]:
            return readers[fullname](data, pos)

        readers[fullname] = late
        # A record met again while it is compiled is recursive, and the path back to it runs
        # through a field that is a union, array or map, which takes at least one byte.
        self._min_sizes[fullname] = 1

    def _record(self, schema: dict[str, Any], namespace: str) -> tuple[Reader, int]:
        fullname = _name_of(schema, namespace)
        self._declare(fullname)
        inner = fullname.rpartition(".")[0]
        plan: list[tuple[str, Reader]] = []
        min_size = 0
        for field in schema["fields"]:
            read_field, field_size = self._compile(field["type"], inner)
            plan.append((str(field["name"]), read_field))
            min_size += field_size

        def read_record(data: bytes, pos: int) -> tuple[Any, int]:
            record = {}
            for name, read_field in plan:
                record[name], pos = read_field(data, pos)
            return record, pos

        self._readers[fullname], self._min_sizes[fullname] = read_record, min_size
        return read_record, min_size

    def _enum(self, schema: dict[str, Any], namespace: str) -> tuple[Reader, int]:
        fullname = _name_of(schema, namespace)
        symbols = tuple(str(s) for s in schema["symbols"])

        def read_enum(data: bytes, pos: int) -> tuple[Any, int]:
            index, pos = read_long(data, pos)
            if not 0 <= index < len(symbols):
                raise ValueError(f"enum index {index} outside 0..{len(symbols) - 1}")
            return symbols[index], pos

        self._readers[fullname], self._min_sizes[fullname] = read_enum, 1
        return read_enum, 1

    def _fixed(self, schema: dict[str, Any], namespace: str) -> tuple[Reader, int]:
        fullname = _name_of(schema, namespace)
        size = int(schema["size"])

        def read_fixed(data: bytes, pos: int) -> tuple[Any, int]:
            end = pos + size
            if end > len(data):
                raise ValueError(f"fixed of {size} bytes cut short")
            return data[pos:end], end

        self._readers[fullname], self._min_sizes[fullname] = read_fixed, size
        return read_fixed, size

    def _union(self, branches: list[Any], namespace: str) -> tuple[Reader, int]:
        if branches in (["null", "double"], ["null", {"type": "double"}]):
            return _read_nullable_double, 1
        compiled = [self._compile(branch, namespace) for branch in branches]
        readers = tuple(reader for reader, _ in compiled)

        def read_union(data: bytes, pos: int) -> tuple[Any, int]:
            index, pos = read_long(data, pos)
            if not 0 <= index < len(readers):
                raise ValueError(f"union branch {index} outside 0..{len(readers) - 1}")
            return readers[index](data, pos)

        return read_union, 1 + min(size for _, size in compiled)

    def _container(self, kind: str, schema: dict[str, Any], namespace: str) -> tuple[Reader, int]:
        items = schema["items"] if kind == "array" else schema["values"]
        read_item, item_size = self._compile(items, namespace)
        if kind == "map":
            item_size += 1  # every entry starts with its key's length
        if item_size == 0:
            raise Unsupported(f"{kind} of zero-byte items")
        read = _array(read_item, item_size) if kind == "array" else _map(read_item)
        return read, 1


def _block_count(data: bytes, pos: int, item_size: int) -> tuple[int, int]:
    count, pos = read_long(data, pos)
    if count < 0:  # a negative count is followed by the block's size in bytes
        count = -count
        _, pos = read_long(data, pos)
    if count * item_size > len(data) - pos:
        raise ValueError(f"block of {count} items cannot fit the bytes left")
    return count, pos


def _array(read_item: Reader, item_size: int) -> Reader:
    def read_array(data: bytes, pos: int) -> tuple[Any, int]:
        items = []
        count, pos = _block_count(data, pos, item_size)
        while count:
            for _ in range(count):
                item, pos = read_item(data, pos)
                items.append(item)
            count, pos = _block_count(data, pos, item_size)
        return items, pos

    return read_array


def _map(read_value: Reader) -> Reader:
    def read_map(data: bytes, pos: int) -> tuple[Any, int]:
        entries = {}
        count, pos = _block_count(data, pos, 1)
        while count:
            for _ in range(count):
                key, pos = _read_string(data, pos)
                entries[key], pos = read_value(data, pos)
            count, pos = _block_count(data, pos, 1)
        return entries, pos

    return read_map
