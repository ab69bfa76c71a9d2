"""What a sink writes to, as the consume loop sees it.

A destination buffers what :meth:`Destination.add` gives it and makes it durable in
:meth:`Destination.write`, calling ``commit`` with the offsets that are safe to commit right after
each durable step (one transaction, one uploaded file). It never talks to Kafka itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from meterstream.errors import MeterstreamError
from sinks.runtime.records import Consumed, TopicPartition

Commit = Callable[[Mapping[TopicPartition, int]], None]
"""Commit these next-offsets to Kafka now (called by destinations after each durable write)."""


class StoreUnavailable(MeterstreamError):
    """The store cannot take writes right now (down, restarting, network): retry later.

    The destination keeps everything it buffered; the loop pauses its partitions, keeps polling
    so the group does not evict it, and retries with backoff.
    """


class Destination(Protocol):
    """A store the sink writes to: PostgreSQL tables, or Parquet files in the lake."""

    name: str

    def add(self, record: Consumed) -> None:
        """Take one record (rows, ticks and dead letters alike; in offset order per partition)."""

    def due(self, now: float) -> bool:
        """True when something should be written now (a full or old batch, a closed file)."""

    def write(self, commit: Commit, *, final: bool = False) -> None:
        """Make what is due durable, calling ``commit`` after each durable step.

        ``final`` (shutdown, or partitions being revoked): write everything buffered, including
        partial batches and open files. Raises :class:`StoreUnavailable` when the store is
        unreachable; what was not written stays buffered.
        """

    def revoke(self, partitions: Collection[TopicPartition]) -> None:
        """Forget buffered data of partitions this sink no longer owns (they will be re-read)."""

    def buffered(self) -> int:
        """Records buffered and not yet durable (for metrics and the shutdown log)."""

    def close(self) -> None:
        """Release connections and local files."""
