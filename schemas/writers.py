"""Per-type Avro binary writers: strict type checks and the bytes, in one closure each.

:mod:`schemas.encoder` compiles a schema into a tree of these. Each writer takes a value and an
``append`` callable for the output parts; it raises :class:`~schemas.errors.EncodeError` naming
the field path (fixed when the writer is built) when the value does not fit.

>>> parts = []
>>> write_long = PRIMITIVE_WRITERS["long"]("R.ts")
>>> write_long(-3, parts.append); parts
[b'\\x05']
>>> write_long(1.5, parts.append)
Traceback (most recent call last):
...
schemas.errors.EncodeError: R.ts: expected an int within 64 bits, got float 1.5
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from schemas.errors import EncodeError

Append = Callable[[bytes], object]
Writer = Callable[[Any, Append], None]

_INT_RANGE: Final = range(-(2**31), 2**31)
_LONG_RANGE: Final = range(-(2**63), 2**63)
_ONE_BYTE: Final = tuple(bytes((i,)) for i in range(0x80))
NULL: Final = b"\x00"
_pack_float = struct.Struct("<f").pack
_pack_double = struct.Struct("<d").pack
_pack_branch1_double = struct.Struct("<Bd").pack  # union index 1 (zig-zag 2) + a double
_MISSING: Final = object()  # marks a record field the value leaves out


def zigzag_varint(value: int) -> bytes:
    """Avro's variable-length zig-zag encoding of an int or long."""
    zigzag = (value << 1) ^ (value >> 63)
    if zigzag < 0x80:
        return _ONE_BYTE[zigzag]
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def type_error(path: str, expected: str, value: Any) -> EncodeError:
    """``<path>: expected <what>, got <type> <short repr>``, for the producer's log."""
    return EncodeError(f"{path}: expected {expected}, got {_describe(value)}")


# numpy's numbers register as Integral / Real, so feature values straight from numpy encode;
# bools (Python's, which are ints, and numpy's, which are neither) never turn into 0 or 1.
def _is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A float or an integer, for float and double fields."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# How a union picks its branch for a value: the first branch whose test accepts it.
BRANCH_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: _is_int(v) and v in _INT_RANGE,
    "long": lambda v: _is_int(v) and v in _LONG_RANGE,
    "float": _is_real,
    "double": _is_real,
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes | bytearray),
}


def record_writer(plan: list[tuple[str, Writer, bytes | None]], label: str) -> Writer:
    """Fields in schema order; ``plan`` holds (name, writer, pre-encoded default or None)."""
    field_count = len(plan)
    known = frozenset(name for name, _, _ in plan)

    def write_record(value: Any, out: Append) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise type_error(label, "a mapping", value)
        get = value.get
        missing = 0
        for name, write, default in plan:
            field_value = get(name, _MISSING)
            if field_value is _MISSING:
                if default is None:
                    raise EncodeError(f"{label}.{name}: required field is missing")
                missing += 1
                out(default)
            else:
                write(field_value, out)
        # Every present key was a known field exactly when the sizes agree.
        if len(value) != field_count - missing:
            unknown = sorted(str(key) for key in value if key not in known)
            raise EncodeError(f"{label}: unknown field(s) {', '.join(unknown)}")

    return write_record


def nullable_writer(inner: Writer) -> Writer:
    def write_nullable(value: Any, out: Append) -> None:
        if value is None:
            out(NULL)
        else:
            out(b"\x02")
            inner(value, out)

    return write_nullable


def nullable_double_writer(path: str) -> Writer:
    # The most common field of a Reading: one pack call for the union index and the value.
    def write_nullable_double(value: Any, out: Append) -> None:
        if value is None:
            out(NULL)
        elif type(value) is float:
            out(_pack_branch1_double(2, value))
        else:
            out(b"\x02")
            _check_double(value, path, out)

    return write_nullable_double


def _check_double(value: Any, path: str, out: Append) -> None:
    if isinstance(value, float):
        out(_pack_double(value))
    elif _is_real(value):
        try:
            out(_pack_double(float(value)))
        except OverflowError:
            raise type_error(path, "a float within double range", value) from None
    else:
        raise type_error(path, "a float", value)


def _null(path: str) -> Writer:
    def write_null(value: Any, out: Append) -> None:
        if value is not None:
            raise type_error(path, "None", value)

    return write_null


def _boolean(path: str) -> Writer:
    def write_boolean(value: Any, out: Append) -> None:
        if value is True:
            out(b"\x01")
        elif value is False:
            out(NULL)
        else:
            raise type_error(path, "a bool", value)

    return write_boolean


def _integer(valid: range, expected: str) -> Callable[[str], Writer]:
    def make(path: str) -> Writer:
        def write_integer(value: Any, out: Append) -> None:
            if type(value) is not int:
                if not _is_int(value):
                    raise type_error(path, expected, value)
                value = int(value)
            if value not in valid:
                raise type_error(path, expected, value)
            out(zigzag_varint(value))

        return write_integer

    return make


def _float(path: str) -> Writer:
    def write_float(value: Any, out: Append) -> None:
        if not _is_real(value):
            raise type_error(path, "a float", value)
        try:
            out(_pack_float(value))
        except (OverflowError, struct.error):
            raise type_error(path, "a float within single-precision range", value) from None

    return write_float


def _double(path: str) -> Writer:
    def write_double(value: Any, out: Append) -> None:
        if type(value) is float:
            out(_pack_double(value))
        else:
            _check_double(value, path, out)

    return write_double


def _string(path: str) -> Writer:
    def write_string(value: Any, out: Append) -> None:
        if type(value) is not str and not isinstance(value, str):
            raise type_error(path, "a str", value)
        try:
            encoded = value.encode()
        except UnicodeEncodeError:
            raise type_error(path, "a str without lone surrogates", value) from None
        out(zigzag_varint(len(encoded)))
        out(encoded)

    return write_string


def _bytes(path: str) -> Writer:
    def write_bytes(value: Any, out: Append) -> None:
        if not isinstance(value, bytes | bytearray):
            raise type_error(path, "bytes", value)
        out(zigzag_varint(len(value)))
        out(bytes(value))

    return write_bytes


def array_writer(items: Writer, path: str) -> Writer:
    def write_array(value: Any, out: Append) -> None:
        if not isinstance(value, list | tuple):
            raise type_error(path, "a list", value)
        if value:
            out(zigzag_varint(len(value)))
            for item in value:
                items(item, out)
        out(NULL)  # end of blocks

    return write_array


def map_writer(values: Writer, path: str) -> Writer:
    write_key = _string(path + " key")

    def write_map(value: Any, out: Append) -> None:
        if not isinstance(value, Mapping):
            raise type_error(path, "a mapping", value)
        if value:
            out(zigzag_varint(len(value)))
            for key, item in value.items():
                write_key(key, out)
                values(item, out)
        out(NULL)  # end of blocks

    return write_map


PRIMITIVE_WRITERS: Final[dict[str, Callable[[str], Writer]]] = {
    "null": _null,
    "boolean": _boolean,
    "int": _integer(_INT_RANGE, "an int within 32 bits"),
    "long": _integer(_LONG_RANGE, "an int within 64 bits"),
    "float": _float,
    "double": _double,
    "string": _string,
    "bytes": _bytes,
}
