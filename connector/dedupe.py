"""Drop repeated readings per meter by ``(meter_id, ts)``.

Duplicates come from reconnect overlap and, rarely, from the server. Only a bounded number of
recent timestamps is remembered per meter; readings far older than those are not duplicates of
anything this process published recently (the worker drops exact duplicates within its open
window, and the sinks upsert on the same key, so a restart's overlap is still harmless).
"""

from __future__ import annotations

from collections import OrderedDict


class Deduplicator:
    """Remembers the last ``memory`` timestamps of each meter.

    >>> seen = Deduplicator(memory=2)
    >>> [seen.first_time("m", ts) for ts in (1, 2, 1, 3, 1)]
    [True, True, False, True, True]
    """

    def __init__(self, memory: int = 64) -> None:
        if memory < 1:
            raise ValueError("memory must be at least 1")
        self.memory = memory
        self._recent: dict[str, OrderedDict[int, None]] = {}

    def first_time(self, meter_id: str, ts: int) -> bool:
        """True the first time (meter_id, ts) is seen within the memory; records it."""
        recent = self._recent.get(meter_id)
        if recent is None:
            recent = self._recent[meter_id] = OrderedDict()
        if ts in recent:
            return False
        recent[ts] = None
        if len(recent) > self.memory:
            recent.popitem(last=False)
        return True
