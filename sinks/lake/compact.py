"""`meterstream lake compact`: merge a day's small files into one file per hour.

Plain Parquet on S3 has no atomic multi-file swap, so compaction is made safe by *when* it runs
and by the readers, not by the writes: only days older than the readings topic's retention plus
lateness are compacted (no re-consumed record can ever re-create a small file there), the merged
file is uploaded before the small ones are deleted, and the lake's views deduplicate on the Kafka
coordinates, so a reader that lists in between sees every reading once.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meterstream.errors import MeterstreamError
from meterstream.settings import Settings
from sinks.lake.naming import day_prefix
from sinks.lake.schema import readings_schema
from sinks.lake.store import LakeStore


class CompactionRefused(MeterstreamError):
    """The day is too young to compact safely, or the date is not a date."""


def merged_key(hour_prefix: str, inputs: list[str]) -> str:
    """A name derived from the inputs: running compaction twice gives the same object.

    >>> merged_key("readings/date=2026-01-01/hour=00/", ["b", "a"])[-34:]
    'compacted-7e18f737311b2dc3.parquet'
    """
    digest = hashlib.sha256("\n".join(sorted(inputs)).encode()).hexdigest()[:16]
    return f"{hour_prefix}compacted-{digest}.parquet"


def deduplicate(table: pa.Table) -> tuple[pa.Table, int]:
    """Sort by (kafka_partition, kafka_offset) and keep one row per pair."""
    if table.num_rows == 0:
        return table, 0
    table = table.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])
    partitions = table.column("kafka_partition").to_numpy()
    offsets = table.column("kafka_offset").to_numpy()
    keep = np.ones(table.num_rows, dtype=bool)
    keep[1:] = (partitions[1:] != partitions[:-1]) | (offsets[1:] != offsets[:-1])
    kept = table.filter(pa.array(keep))
    return kept, table.num_rows - kept.num_rows


def _conform(table: pa.Table) -> pa.Table:
    """The current lake schema: columns older files lack become nulls."""
    schema = readings_schema()
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def compact_day(
    settings: Settings,
    day: str,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _line: None,
    today: date | None = None,
) -> Iterator[str]:
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise CompactionRefused(f"--date {day!r} is not a date (YYYY-MM-DD)") from None
    lake = settings.lake
    age = ((today or datetime.now(UTC).date()) - parsed).days
    if age < lake.compact_min_age_days and not force:
        raise CompactionRefused(
            f"{day} is {age} days old; days younger than {lake.compact_min_age_days} days "
            "(METERSTREAM_LAKE_COMPACT_MIN_AGE_DAYS) may still receive re-consumed records"
        )
    store = LakeStore(settings.s3, lake.bucket)
    by_hour: dict[str, list[str]] = defaultdict(list)
    for key, _size in store.list_keys(day_prefix(parsed.isoformat())):
        if key.endswith(".parquet"):
            by_hour[key.rsplit("/", 1)[0] + "/"].append(key)
    if not by_hour:
        yield f"{day}: no files"
        return
    total_in = total_out = 0
    for hour_prefix in sorted(by_hour):
        inputs = sorted(by_hour[hour_prefix])
        hour = hour_prefix.rstrip("/").rsplit("=", 1)[1]
        if len(inputs) == 1:
            yield f"{day} hour {hour}: 1 file, nothing to merge"
            continue
        progress(f"{day} hour {hour}: merging {len(inputs)} files ...")
        with tempfile.TemporaryDirectory(prefix="meterstream-compact-") as scratch:
            tables = []
            for i, key in enumerate(inputs):
                local = Path(scratch) / f"{i}.parquet"
                store.download(key, local)
                tables.append(_conform(pq.read_table(local)))
            merged, duplicates = deduplicate(pa.concat_tables(tables))
            target = merged_key(hour_prefix, inputs)
            out = Path(scratch) / "merged.parquet"
            pq.write_table(merged, out, compression="zstd", row_group_size=lake.row_group_rows)
            store.upload(target, out)
            for key in inputs:
                if key != target:
                    store.delete(key)
        total_in += len(inputs)
        total_out += 1
        yield (
            f"{day} hour {hour}: {len(inputs)} files -> {target.rsplit('/', 1)[1]} "
            f"({merged.num_rows} rows, {duplicates} duplicates dropped)"
        )
    yield f"{day}: {total_in} files merged into {total_out}"
