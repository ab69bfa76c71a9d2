"""What every source gives the connector: batches of readings, stamped with their arrival time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from connector.producer import OnFull
from schemas.records import ReadingRecord


class Source(Protocol):
    """A stream of readings. Bounded sources end; live ones run until cancelled."""

    name: str
    # A live source cannot wait for Kafka (the meter keeps sending): it drops and counts when the
    # buffer is full. A bounded source waits for room instead.
    on_full: OnFull

    def batches(self) -> AsyncIterator[list[ReadingRecord]]: ...

    def ready(self) -> bool:
        """True while the source delivers fresh data (feeds /readyz)."""
        ...

    def summary(self) -> str:
        """One line saying what the source did, printed at the end of a run."""
        ...
