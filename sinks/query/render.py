"""Query results as text for a terminal: aligned columns, a row cap, and a row count."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa

NULL = "NULL"


def format_value(value: Any) -> str:
    """One cell: NULL for missing, ISO timestamps, floats without binary noise.

    >>> format_value(0.1 + 0.2), format_value(None), format_value(3)
    ('0.3', 'NULL', '3')
    >>> format_value(dt.datetime(2024, 3, 4, 12, 0, tzinfo=dt.UTC))
    '2024-03-04 12:00:00+00:00'
    """
    if value is None:
        return NULL
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value)) if abs(value) >= 1e6 else repr(value)
        return f"{value:.12g}"
    if isinstance(value, dt.datetime | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _is_numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def render_table(table: pa.Table, limit: int) -> str:
    """The first ``limit`` rows (0: all) as aligned text, then how many rows there are."""
    total = table.num_rows
    shown = table if limit <= 0 else table.slice(0, limit)
    names = table.column_names
    if not names:
        return "(no rows)"
    columns = [[format_value(v) for v in shown.column(i).to_pylist()] for i in range(len(names))]
    widths = [max([len(n), *map(len, cells)]) for n, cells in zip(names, columns, strict=True)]
    right = [_is_numeric(f.type) for f in table.schema]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    out = [line(list(names)), "  ".join("-" * w for w in widths)]
    out += [line([col[i] for col in columns]) for i in range(shown.num_rows)]
    noun = "row" if total == 1 else "rows"
    if shown.num_rows < total:
        out.append(
            f"({shown.num_rows} of {total} {noun} shown; --limit 0 shows all, --csv or "
            "--parquet writes all)"
        )
    else:
        out.append(f"({total} {noun})")
    return "\n".join(out)
