"""A Faust table that remembers its last changelog write per partition.

The worker's state and its model snapshots live in two tables, hence two changelog topics, and
Kafka orders records only within one partition of one topic. A state write must not become
durable before the snapshots it relies on; the futures kept here let the worker wait for exactly
those writes (almost always already acknowledged), instead of flushing the whole producer.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types.tuples import FutureMessage


class TrackedTable(faust.Table[Any, Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per partition, the future of the last changelog record queued (acked when done).
        self.last_writes: dict[int, FutureMessage] = {}
        self._failed_write: BaseException | None = None

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> FutureMessage:
        future: FutureMessage = super().send_changelog(
            partition, key, value, key_serializer, value_serializer
        )
        if partition is not None:
            self.last_writes[partition] = future
        future.add_done_callback(self._remember_failure)
        return future

    def _remember_failure(self, future: FutureMessage) -> None:
        if self._failed_write is None and not future.cancelled():
            self._failed_write = future.exception()

    def raise_failed_write(self) -> None:
        """Raise the first changelog write that failed (Faust itself only logs it)."""
        if self._failed_write is not None:
            raise RuntimeError(f"a changelog write of table {self.name} failed") from (
                self._failed_write
            )
