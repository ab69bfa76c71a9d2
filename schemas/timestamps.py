"""Timestamps in the contract are int microseconds since the Unix epoch, UTC, both ways.

Records never carry ``datetime`` objects: ints are exact, cheap and compare the same in every
language that reads the topic. These two helpers convert at the edges (parsing a source's
ISO-8601 string, showing a value to a person).

>>> from datetime import datetime, timedelta, timezone
>>> plus_one = timezone(timedelta(hours=1))
>>> datetime_to_micros(datetime(2021, 3, 14, 1, 43, 37, 500000, tzinfo=plus_one))
1615682617500000
>>> micros_to_datetime(1615682617500000)
datetime.datetime(2021, 3, 14, 0, 43, 37, 500000, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)


def micros_to_datetime(micros: int) -> datetime:
    """An aware UTC datetime; raises OverflowError outside the years 1..9999."""
    return EPOCH + timedelta(microseconds=micros)


def datetime_to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch; ``moment`` must carry a time zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; say which (UTC?) before converting")
    # Integer timedelta division: no float rounding, exact for any aware datetime.
    return (moment - EPOCH) // _ONE_MICROSECOND
