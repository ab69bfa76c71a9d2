"""Replay recorded readings from CSV, JSON lines or Parquet (this project's lake layout included).

Files are read in path order (the lake's ``date=.../hour=...`` folders sort by time), each batch
sorted by ``ts``, and published at real time, N times real time or as fast as possible. Columns
use the ``Reading`` field names; ``ts`` may be ISO-8601 text with an offset or int microseconds.
Files without a ``meter_id`` column need ``METERSTREAM_REPLAY_METER_ID``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as ds

from connector.clock import Clock
from connector.pacing import Pacer, parse_speed
from connector.producer import OnFull
from connector.progress import Progress
from connector.sources.errors import FatalSourceError
from connector.tibber.payload import PayloadError, parse_timestamp
from meterstream.settings import ReplaySettings, S3Settings
from schemas.records import ReadingRecord

log = logging.getLogger(__name__)

Format = Literal["csv", "jsonl", "parquet"]
_BATCH = 5_000
_READING_FIELDS: frozenset[str] = frozenset(ReadingRecord.__annotations__)
_INT_FIELDS = frozenset({"ts", "received_at", "ts_offset_minutes", "signal_strength"})
_STRING_FIELDS = frozenset({"meter_id", "source", "currency"})


class ReplayError(FatalSourceError, ValueError):
    """The replay input cannot be read as readings (the message names the file and row)."""


def detect_format(path: str) -> Format:
    lowered = path.lower().removesuffix(".gz")
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return "parquet"


def _coerce(row: Mapping[str, Any], default_meter: str, where: str) -> dict[str, Any]:
    reading: dict[str, Any] = {}
    for name, value in row.items():
        if name not in _READING_FIELDS:
            continue
        if value in ("", None):
            reading[name] = None
        elif name == "ts" and isinstance(value, str) and not value.lstrip("-").isdigit():
            try:
                reading["ts"], offset = parse_timestamp(value)
            except PayloadError as exc:
                raise ReplayError(f"{where}: {exc}") from None
            reading.setdefault("ts_offset_minutes", offset)
        elif hasattr(value, "timestamp") and name in ("ts", "received_at"):
            reading[name] = int(value.timestamp() * 1_000_000)
        elif name in _INT_FIELDS:
            reading[name] = int(value)
        elif name in _STRING_FIELDS:
            reading[name] = str(value)
        else:
            number = float(value)
            # Non-finite optional values become null; a non-finite power is dropped by the validator.
            reading[name] = number if name == "power_w" or math.isfinite(number) else None
    if not reading.get("meter_id"):
        if not default_meter:
            raise ReplayError(f"{where}: no meter_id column; set METERSTREAM_REPLAY_METER_ID")
        reading["meter_id"] = default_meter
    if reading.get("ts") is None or reading.get("power_w") is None:
        raise ReplayError(f"{where}: ts and power_w are required")
    reading["source"] = reading.get("source") or "replay"
    return reading


def _files(path: str) -> list[str]:
    if path.startswith("s3://"):
        return [path]
    root = Path(path)
    if root.is_dir():
        return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not root.exists():
        raise ReplayError(f"{path} does not exist")
    return [str(root)]


def _text_rows(path: str, fmt: Format) -> Iterator[tuple[int, Mapping[str, Any]]]:
    opener = __import__("gzip").open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        assert isinstance(handle, io.TextIOBase)
        if fmt == "csv":
            yield from enumerate(csv.DictReader(handle), start=2)
        else:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ReplayError(f"{path}:{number}: not JSON: {exc.msg}") from None


def _s3_filesystem(s3: S3Settings) -> Any:
    from pyarrow import fs

    return fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.resolved_secret_key().get_secret_value(),
        endpoint_override=s3.host,
        scheme="https" if s3.secure else "http",
        region=s3.region,
    )


def _parquet_batches(path: str, s3: S3Settings | None) -> Iterator[list[dict[str, Any]]]:
    if path.startswith("s3://"):
        if s3 is None:
            raise ReplayError("s3:// paths need the METERSTREAM_S3_* settings")
        dataset = ds.dataset(
            path.removeprefix("s3://"),
            format="parquet",
            partitioning="hive",
            filesystem=_s3_filesystem(s3),
        )
    else:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    wanted = [n for n in dataset.schema.names if n in _READING_FIELDS]
    for fragment in sorted(dataset.get_fragments(), key=lambda f: f.path):
        table: pa.Table = fragment.to_table(columns=wanted)
        if "ts" in table.column_names and pa.types.is_timestamp(table.schema.field("ts").type):
            table = table.set_column(
                table.column_names.index("ts"),
                "ts",
                table.column("ts").cast(pa.timestamp("us", "UTC")).cast(pa.int64()),
            )
        for batch in table.to_batches(_BATCH):
            yield batch.to_pylist()


def _same_ts_groups(batch: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    start = 0
    for i in range(1, len(batch) + 1):
        if i == len(batch) or batch[i]["ts"] != batch[start]["ts"]:
            yield batch[start:i]
            start = i


class ReplaySource:
    """Readings from files, paced by ``METERSTREAM_REPLAY_SPEED``."""

    name = "replay"
    on_full: OnFull = "wait"

    def __init__(
        self, settings: ReplaySettings, clock: Clock, s3: S3Settings | None = None
    ) -> None:
        if not settings.path:
            raise ReplayError("set METERSTREAM_REPLAY_PATH to a file, a folder or an s3:// prefix")
        self._settings = settings
        self._clock = clock
        self._s3 = s3
        self._pacer = Pacer(clock, parse_speed(settings.speed))
        self._progress = Progress(f"replay {settings.path}")
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        self._files = 0

    def ready(self) -> bool:
        return True

    def _raw_batches(self) -> Iterator[list[dict[str, Any]]]:
        for path in _files(self._settings.path):
            fmt = detect_format(path) if self._settings.format == "auto" else self._settings.format
            self._files += 1
            if fmt == "parquet":
                for rows in _parquet_batches(path, self._s3):
                    yield [_coerce(r, self._settings.meter_id, path) for r in rows]
                continue
            batch: list[dict[str, Any]] = []
            for number, row in _text_rows(path, fmt):
                batch.append(_coerce(row, self._settings.meter_id, f"{path}:{number}"))
                if len(batch) >= _BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

    async def batches(self) -> AsyncIterator[list[ReadingRecord]]:
        paced = self._settings.speed.strip().lower() != "max"
        for batch in self._raw_batches():
            batch.sort(key=lambda r: (r["ts"], r["meter_id"]))
            if self._first_ts is None:
                self._first_ts = batch[0]["ts"]
            self._last_ts = batch[-1]["ts"]
            # As fast as possible: whole batches. Paced: one group of equal timestamps at a time.
            groups = _same_ts_groups(batch) if paced else [batch]
            for group in groups:
                await self._pacer.wait_for(group[0]["ts"])
                received = int(self._clock.wall() * 1_000_000)
                for reading in group:
                    reading["received_at"] = received
                self._progress.advance(len(group))
                yield group  # type: ignore[misc]
        self._progress.close()

    def summary(self) -> str:
        span = ""
        if self._first_ts is not None and self._last_ts is not None:
            from schemas.timestamps import micros_to_datetime

            span = f", event time {micros_to_datetime(self._first_ts):%Y-%m-%d %H:%M} to {micros_to_datetime(self._last_ts):%Y-%m-%d %H:%M} UTC"
        return f"replayed {self._progress.count:,} readings from {self._files} file(s){span}"
