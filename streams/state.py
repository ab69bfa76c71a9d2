"""What the worker keeps per meter between batches, and its byte form in the Faust table.

Two values per meter in the ``meter-state`` table, because they change at very different rates:

* the *hot* value (key ``meter_id``): the open windows, how many windows the model has seen,
  which snapshot it can be restored from. It changes with every reading and is written at every
  state flush, so it is kept small (well under a kilobyte at the default window);
* the *history* (key ``__history__:<meter_id>``): the feature vectors since the snapshot before
  the newest one (so either of the last two snapshots plus a replay rebuilds the exact model) and
  an outbox of the last scores with the offset of the record that closed each window (re-sent
  after a crash; downstream upserts absorb the duplicates). It changes only when a window closes,
  and is written only then.

At a flush the history is written before the hot value, so after a crash the history may be
*ahead* of the hot value (a window closed in the history but still open in the hot value), never
behind. Re-applying the records closes that window again; :meth:`MeterState.add_window` replaces
the entry instead of appending a second one, and the model restore uses only as many vectors as
the hot value says the model has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

_FORMAT = 1  # everything in one value (older releases): still read
_HOT_FORMAT = 2


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

    # -- the two stored values ---------------------------------------------------------------
    def hot_bytes(self) -> bytes:
        packed = msgpack.packb(
            [
                _HOT_FORMAT,
                self.windows,
                self.windows_total,
                self.snapshot_seq,
                self.model_fingerprint,
            ],
            use_bin_type=True,
        )
        return bytes(packed)

    def history_bytes(self) -> bytes:
        packed = msgpack.packb(
            [
                [[start, vector] for start, vector in self.vectors],
                [[e.window_start_us, e.closing_offset, e.payload] for e in self.outbox],
            ],
            use_bin_type=True,
        )
        return bytes(packed)

    @classmethod
    def from_parts(cls, hot: bytes, history: bytes | None) -> MeterState:
        """The state from its hot value and its history (None: no window closed yet)."""
        fields: list[Any] = msgpack.unpackb(hot, raw=False)
        if fields[0] == _FORMAT:  # one value with everything in it
            return cls(
                windows=fields[1],
                windows_total=fields[2],
                snapshot_seq=fields[3],
                vectors=_vectors(fields[4]),
                outbox=_outbox(fields[5]),
                model_fingerprint=fields[6],
            )
        if fields[0] != _HOT_FORMAT:
            raise ValueError(f"unknown meter state format {fields[0]}")
        state = cls(
            windows=fields[1],
            windows_total=fields[2],
            snapshot_seq=fields[3],
            model_fingerprint=fields[4],
        )
        if history:
            vectors, outbox = msgpack.unpackb(history, raw=False)
            state.vectors = _vectors(vectors)
            state.outbox = _outbox(outbox)
        return state

    # -- changes -------------------------------------------------------------------------------
    def add_window(self, start_us: int, values: list[float], entry: OutboxEntry) -> None:
        """Record a closed window's vector and score; closing the same window again replaces them.

        Windows of a meter close in order, so anything at or after ``start_us`` is a leftover of
        a history written ahead of its hot value before a crash.
        """
        self.vectors = [(s, v) for s, v in self.vectors if s < start_us]
        self.vectors.append((start_us, values))
        self.outbox = [e for e in self.outbox if e.window_start_us < start_us]
        self.outbox.append(entry)

    def trim_outbox(self, keep: int, keep_closed_after: int) -> None:
        """Keep the last ``keep`` scores, and every score closed after ``keep_closed_after``."""
        recent = self.outbox[-keep:]
        older = [e for e in self.outbox[:-keep] if e.closing_offset > keep_closed_after]
        self.outbox = older + recent


def _vectors(raw: list[Any]) -> list[tuple[int, list[float]]]:
    return [(int(s), [float(x) for x in v]) for s, v in raw]


def _outbox(raw: list[Any]) -> list[OutboxEntry]:
    return [OutboxEntry(int(s), int(o), bytes(p)) for s, o, p in raw]
