"""Where a lake file lives: Hive-style event-time partitions and offset-based object names.

An object is named after the Kafka partition and the offset of its first row. Because the sink
closes files only by rules that depend on the records themselves (see :mod:`sinks.lake.roller`),
re-reading a partition from its committed offset after a crash rebuilds the same files under the
same names, and an upload that was not yet committed is simply overwritten: each reading ends up
in the lake once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PREFIX = "readings/"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(
    r"^readings/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"(?P<topic>[^/+]+)\+(?P<partition>\d{4,})\+(?P<offset>\d{20})\.parquet$"
)


@dataclass(frozen=True, order=True)
class HourPartition:
    """An event-time hour in UTC: the lake's ``date=…/hour=…`` directory."""

    date: str
    hour: int

    @classmethod
    def of(cls, ts_us: int) -> HourPartition:
        """The hour a reading belongs to.

        >>> HourPartition.of(1_700_000_000_000_000)
        HourPartition(date='2023-11-14', hour=22)
        """
        moment = _EPOCH + timedelta(microseconds=ts_us)
        return cls(moment.strftime("%Y-%m-%d"), moment.hour)

    @property
    def start_us(self) -> int:
        """The hour's first microsecond since the epoch."""
        moment = datetime.strptime(self.date, "%Y-%m-%d").replace(tzinfo=UTC, hour=self.hour)
        return (moment - _EPOCH) // timedelta(microseconds=1)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}date={self.date}/hour={self.hour:02d}/"


def object_key(hour: HourPartition, topic: str, partition: int, first_offset: int) -> str:
    """The object name of a file whose first row is ``topic[partition]@first_offset``.

    >>> object_key(HourPartition("2026-01-02", 3), "meter.readings.v1", 1, 42)
    'readings/date=2026-01-02/hour=03/meter.readings.v1+0001+00000000000000000042.parquet'
    """
    return f"{hour.prefix}{topic}+{partition:04d}+{first_offset:020d}.parquet"


@dataclass(frozen=True)
class ParsedKey:
    hour: HourPartition
    topic: str
    partition: int
    first_offset: int


def parse_key(key: str) -> ParsedKey | None:
    """The parts of a sink-written object name, None for anything else (e.g. compacted files)."""
    match = _NAME.match(key)
    if match is None:
        return None
    return ParsedKey(
        HourPartition(match["date"], int(match["hour"])),
        match["topic"],
        int(match["partition"]),
        int(match["offset"]),
    )


def day_prefix(date: str) -> str:
    return f"{PREFIX}date={date}/"
