"""Kafka Connect's file rules for one partition, decided from the records alone (pure code).

One open file per Kafka partition. It is closed *before* a record when

* the record's event hour differs from the file's (either direction),
* the file already holds ``max_rows`` rows, or
* the record's broker time is ``max_age`` or more after the file's first record's.

Every rule looks only at records and their broker append times (the readings topic uses
LogAppendTime), never at the wall clock, so replaying the partition from the same offset closes
files at the same offsets. Ticks (and dead letters) carry no row but do carry a broker time: they
close an old file on a quiet partition, which bounds how long a reading waits for the lake.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks.lake.naming import HourPartition

HOUR_US = 3_600_000_000


@dataclass
class OpenFile:
    hour: HourPartition
    first_offset: int
    first_broker_us: int
    last_offset: int
    rows: int = 0
    hour_start_us: int = 0  # the hour as an integer range: checked for every record

    def __post_init__(self) -> None:
        self.hour_start_us = self.hour.start_us


class Roller:
    """Tracks the open file of one partition and says when it must be closed.

    >>> roller = Roller(max_rows=2, max_age_us=60_000_000)
    >>> h = 1_700_000_000_000_000
    >>> roller.closes_before(h, 0), roller.start(HourPartition.of(h), 5, 0)
    (False, None)
    >>> roller.append(5); roller.closes_before(h, 1_000_000)
    False
    >>> roller.append(6); roller.closes_before(h, 2_000_000)  # two rows: full
    True
    """

    def __init__(self, max_rows: int, max_age_us: int) -> None:
        self.max_rows = max_rows
        self.max_age_us = max_age_us
        self.open: OpenFile | None = None

    def closes_before(self, ts_us: int | None, broker_us: int) -> bool:
        """Must the open file be closed before this record? ``ts_us`` None: a tick."""
        current = self.open
        if current is None:
            return False
        if broker_us - current.first_broker_us >= self.max_age_us:
            return True
        if ts_us is None:
            return False
        return (
            current.rows >= self.max_rows
            or not current.hour_start_us <= ts_us < current.hour_start_us + HOUR_US
        )

    def start(self, hour: HourPartition, offset: int, broker_us: int) -> None:
        self.open = OpenFile(hour, offset, broker_us, offset)

    def append(self, offset: int) -> None:
        assert self.open is not None
        self.open.rows += 1
        self.open.last_offset = offset

    def close(self) -> OpenFile | None:
        closed, self.open = self.open, None
        return closed
