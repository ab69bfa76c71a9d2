"""Local days in an IANA time zone: where midnight and each hour shift fall, in UTC micros.

Counters reset at local midnight and at every local hour shift, and the household's daily
rhythm follows the wall clock, so the simulator works one local day at a time. A DST day is 23
or 25 hours long and the UTC offset changes inside it; :class:`LocalDay` finds that instant
once, so per-reading offsets and wall-clock hours are plain array arithmetic.

>>> from datetime import date
>>> from zoneinfo import ZoneInfo
>>> day = LocalDay.of(ZoneInfo("Europe/Oslo"), date(2026, 3, 29))
>>> (day.end_us - day.start_us) // HOUR_US, len(day.hour_starts_us)
(23, 23)
>>> day.offset_start_us // 60_000_000, day.offset_end_us // 60_000_000
(60, 120)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from schemas.timestamps import datetime_to_micros, micros_to_datetime

HOUR_US: Final = 3_600_000_000
DAY_US: Final = 24 * HOUR_US
_ONE_US: Final = timedelta(microseconds=1)


def utc_offset_us(tz: ZoneInfo, ts_us: int) -> int:
    """The zone's UTC offset at the instant ``ts_us``, in microseconds."""
    offset = micros_to_datetime(ts_us).astimezone(tz).utcoffset()
    return 0 if offset is None else offset // _ONE_US


def local_date(tz: ZoneInfo, ts_us: int) -> dt.date:
    """The wall-clock date in ``tz`` at the instant ``ts_us``."""
    return micros_to_datetime(ts_us).astimezone(tz).date()


def local_time_us(tz: ZoneInfo, day: dt.date, hour: float) -> int:
    """The instant the wall clock in ``tz`` shows ``hour`` (0..24, fractional) on ``day``.

    A wall time skipped by a DST jump maps to the instant of the jump's old-offset reading,
    which is what ``zoneinfo`` does with ``fold=0``; callers only need a plausible instant.
    """
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    wall = midnight.replace(tzinfo=None) + timedelta(hours=hour)
    return datetime_to_micros(wall.replace(tzinfo=tz))


@dataclass(frozen=True, eq=False)
class LocalDay:
    """One wall-clock day in a zone, as a half-open UTC interval ``[start_us, end_us)``.

    ``shift_us`` is the first instant with ``offset_end_us`` (``end_us`` when the offset does
    not change that day; at most one change per day is assumed, as in every real zone).
    ``hour_starts_us`` lists the local hour shifts, starting with midnight itself.
    """

    date: dt.date
    start_us: int
    end_us: int
    offset_start_us: int
    offset_end_us: int
    shift_us: int
    hour_starts_us: NDArray[np.int64]

    @classmethod
    def of(cls, tz: ZoneInfo, day: dt.date) -> LocalDay:
        """The local day ``day`` in ``tz``."""
        start = local_time_us(tz, day, 0.0)
        end = local_time_us(tz, day + timedelta(days=1), 0.0)
        before, after = utc_offset_us(tz, start), utc_offset_us(tz, end - 1)
        shift = end if before == after else _first_instant_with(tz, after, start, end - 1)
        hours = {start, *_hour_starts(start, shift, before), *_hour_starts(shift, end, after)}
        if shift < end:
            hours.add(shift)  # the wall clock jumps: a new hour starts there too
        return cls(
            date=day,
            start_us=start,
            end_us=end,
            offset_start_us=before,
            offset_end_us=after,
            shift_us=shift,
            hour_starts_us=np.array(sorted(hours), dtype=np.int64),
        )

    @classmethod
    def containing(cls, tz: ZoneInfo, ts_us: int) -> LocalDay:
        """The local day in ``tz`` that contains the instant ``ts_us``."""
        return cls.of(tz, local_date(tz, ts_us))

    def following(self, tz: ZoneInfo) -> LocalDay:
        """The next local day."""
        return LocalDay.of(tz, self.date + timedelta(days=1))

    def offsets_us(self, ts_us: NDArray[np.int64]) -> NDArray[np.int64]:
        """The UTC offset at each instant of ``ts_us`` (all inside this day)."""
        return np.where(ts_us < self.shift_us, self.offset_start_us, self.offset_end_us)

    def wall_time_us(self, ts_us: int) -> int:
        """The instant (inside this day) the wall clock shows ``ts_us``'s wall time-of-day.

        Used to turn "19:30 local" into UTC: ``start_us + hours`` is right before the DST
        shift; after it the offset change has to be taken off.
        """
        if ts_us >= self.shift_us:
            ts_us -= self.offset_end_us - self.offset_start_us
        return min(max(ts_us, self.start_us), self.end_us - 1)

    def at_hour(self, hour: float) -> int:
        """The instant this day's wall clock shows ``hour`` (clamped into the day)."""
        return self.wall_time_us(self.start_us + round(hour * HOUR_US))

    def wall_hours(self, ts_us: NDArray[np.int64]) -> NDArray[np.float64]:
        """Hour of the local wall clock at each instant, ``0 <= h < 24``."""
        wall = (ts_us + self.offsets_us(ts_us)) % DAY_US
        return wall / HOUR_US


def _hour_starts(lo: int, hi: int, offset_us: int) -> range:
    """Instants in ``[lo, hi)`` where the wall clock (at ``offset_us``) shows a whole hour."""
    return range(lo + (-(lo + offset_us)) % HOUR_US, hi, HOUR_US)


def _first_instant_with(tz: ZoneInfo, offset_us: int, lo: int, hi: int) -> int:
    """Bisect ``(lo, hi]`` for the first instant whose offset is ``offset_us`` (true at hi)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if utc_offset_us(tz, mid) == offset_us:
            hi = mid
        else:
            lo = mid
    return hi
