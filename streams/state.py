"""What the worker keeps per meter between batches, and its byte form in the Faust table.

One value per meter in the ``meter-state`` table, written once per batch: the open windows, how
many windows the model has seen, which snapshot the model can be restored from, the feature
vectors since the snapshot before it (so either of the last two snapshots plus a replay of the
vectors rebuilds the exact model), and an outbox of the last scores with the offset of the record
that closed each window (re-sent after a crash; downstream upserts absorb the duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

_FORMAT = 1


@dataclass
class OutboxEntry:
    window_start_us: int
    closing_offset: int
    payload: bytes  # the encoded AnomalyScore, exactly as it was sent


@dataclass
class MeterState:
    windows: bytes = b""  # MeterWindows.to_bytes()
    windows_total: int = 0  # windows the model has processed
    snapshot_seq: int = 0  # newest snapshot written (0: none yet)
    # (window_start_us, raw feature vector) of every window since the *previous* snapshot
    vectors: list[tuple[int, list[float]]] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    model_fingerprint: str = ""

    def to_bytes(self) -> bytes:
        packed = msgpack.packb(
            [
                _FORMAT,
                self.windows,
                self.windows_total,
                self.snapshot_seq,
                [[start, vector] for start, vector in self.vectors],
                [[e.window_start_us, e.closing_offset, e.payload] for e in self.outbox],
                self.model_fingerprint,
            ],
            use_bin_type=True,
        )
        return bytes(packed)

    @classmethod
    def from_bytes(cls, data: bytes) -> MeterState:
        fields: list[Any] = msgpack.unpackb(data, raw=False)
        if fields[0] != _FORMAT:
            raise ValueError(f"unknown meter state format {fields[0]}")
        return cls(
            windows=fields[1],
            windows_total=fields[2],
            snapshot_seq=fields[3],
            vectors=[(int(s), [float(x) for x in v]) for s, v in fields[4]],
            outbox=[OutboxEntry(int(s), int(o), bytes(p)) for s, o, p in fields[5]],
            model_fingerprint=fields[6],
        )

    def trim_outbox(self, keep: int, keep_closed_after: int) -> None:
        """Keep the last ``keep`` scores, and every score closed after ``keep_closed_after``."""
        recent = self.outbox[-keep:]
        older = [e for e in self.outbox[:-keep] if e.closing_offset > keep_closed_after]
        self.outbox = older + recent
