"""Parquet files that grow on local disk until they are uploaded (only a row group in memory).

Open files are spooled to disk rather than held in memory, so many partitions and large files
cost disk, not RAM. A spool file is scratch: if the process dies, its rows were never committed
to Kafka and are read again, so leftovers are deleted at start.
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meterstream.faults import fault_point
from sinks.lake.schema import reading_field_names, readings_schema

log = logging.getLogger(__name__)

SUFFIX = ".parquet.part"
_COMPRESSION = "zstd"


class SpoolFile:
    """One open lake file: rows are buffered up to a row group, then appended to disk."""

    def __init__(self, path: Path, row_group_rows: int) -> None:
        self.path = path
        self.rows = 0
        self._row_group_rows = row_group_rows
        self._schema = readings_schema()
        self._fields = reading_field_names()
        self._buffer: list[tuple[Any, ...]] = []
        # Decoded records carry every field of the schema: one C call picks them in order.
        self._pick = operator.itemgetter(*self._fields)
        self._writer: pq.ParquetWriter | None = None

    def append(self, value: Mapping[str, Any], partition: int, offset: int, broker_us: int) -> None:
        self._buffer.append((*self._pick(value), partition, offset, broker_us))
        self.rows += 1
        if len(self._buffer) >= self._row_group_rows:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._buffer:
            return
        columns = list(zip(*self._buffer, strict=True))
        batch = pa.RecordBatch.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, self._schema, strict=True)],
            schema=self._schema,
        )
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                self.path,
                self._schema,
                compression=_COMPRESSION,
                # Plain statistics let DuckDB and Trino skip row groups by ts and meter_id.
                write_statistics=True,
            )
        self._writer.write_batch(batch, row_group_size=len(self._buffer))
        self._buffer.clear()
        fault_point("after_spool_write")

    def finish(self) -> int:
        """Write the last row group and the footer; returns the file size in bytes."""
        self._flush_row_group()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.path.stat().st_size

    def discard(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        self._buffer.clear()
        self.path.unlink(missing_ok=True)


def clean_spool(directory: Path) -> int:
    """Delete leftovers of an earlier process (never committed, so they will be re-read)."""
    if not directory.exists():
        return 0
    removed = 0
    for leftover in directory.glob(f"*{SUFFIX}"):
        leftover.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info(
            "removed %d unfinished spool files from %s (their rows are read again)",
            removed,
            directory,
        )
    return removed


def spool_path(directory: Path, topic: str, partition: int, first_offset: int) -> Path:
    return directory / f"{topic}+{partition:04d}+{first_offset:020d}{SUFFIX}"
