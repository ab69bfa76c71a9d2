"""Per-meter event-time tumbling windows, closed by the meter's own watermark or by idle ticks.

One :class:`MeterWindows` holds one meter's open windows. The worker keeps it in its table as
bytes (:meth:`~MeterWindows.to_bytes`), feeds it every reading of the meter and every tick of the
meter's partition, and gets back the windows that closed. Nothing here reads a clock: the same
sequence of readings and ticks always gives the same windows, byte for byte.

Semantics
---------
* **Windows** are ``[k*size, (k+1)*size)`` in epoch microseconds (aligned to the epoch).
* **Watermark** = the highest ``ts`` this meter has sent. Only the meter's own event time counts:
  never other meters' readings, never the wall clock, never a tick's time.
* **Closing.** A window ``[s, e)`` closes when the watermark reaches ``e + lateness``. The state
  keeps a *closed-up-to* boundary, the end of the newest window the meter has closed: every
  window ending at or before it is closed, including windows that never had a reading (so the
  rule does not depend on which windows happened to get data). Only windows with readings are
  emitted, oldest first, each with the offset of the record that closed it.
* **Late.** A reading with ``ts`` < closed-up-to belongs to a closed window: ``"late"``, never
  merged (the caller counts and drops it). A reading at most ``lateness`` behind the watermark
  is never late, so any arrival order within the lateness gives the same windows.
* **Duplicate.** A reading whose exact ``ts`` is already in its open window is ``"duplicate"``
  and dropped; the first arrival wins (the connector re-sends overlaps after a restart).
* **Idle flush, in arrival time.** ``last_append_ms`` is the broker append time of the meter's
  latest reading (any outcome: a meter that still talks is not idle). A tick appended at ``T``
  with ``T - last_append >= idle_timeout`` estimates the meter's event time as
  ``watermark + (T - last_append)``, the silence carried into event time, and closes every open
  window with ``end + lateness <=`` that estimate. Closed-up-to moves with it, so a straggler
  for those windows is late, and a replay of the same log (same ticks, same append times) gives
  the same windows. A tick changes the state only when it closes a window, so a long-idle meter
  costs no state writes. :attr:`MeterWindows.idle_close_due_ms` tells when that happens.
* **The one divergence left.** A reading that reaches the broker more than the idle timeout
  after its siblings can be late on a live run (a tick saw the meter idle first) but not in a
  max-speed replay of the same readings produced anew. A backlog never looks idle: readings and
  ticks share the broker's arrival clock, so a worker catching up reads ticks stamped right
  after the readings that preceded them, however old their ``ts``.
* **State per open window** (at most ~2 at a time): the sorted ``ts`` and ``power`` (bounded by
  window / cadence; needed for exact duplicate detection and for the ordered energy rule),
  per-phase voltage sum and count, per-phase current max. Voltages are summed in integer
  millivolts so the sum does not depend on arrival order (float addition is not associative);
  1 mV is far below any meter's resolution. A phase value counts only if it is finite and below
  1e9 in magnitude; power is kept as sent (features sanitise it).

Example: one-minute windows with 10 s lateness.

>>> from streams.core.types import ReadingPoint, WindowConfig
>>> S = 1_000_000
>>> w = MeterWindows(WindowConfig(size_us=60 * S, lateness_us=10 * S))
>>> def at(sec, power, append_ms, offset):
...     return ReadingPoint(ts_us=sec * S, power_w=power, append_ms=append_ms, offset=offset)
>>> [w.add(at(s, 100.0 + s, 1_000 * s, s)).outcome for s in (10, 65, 50, 65)]
['accepted', 'accepted', 'accepted', 'duplicate']
>>> r = w.add(at(72, 80.0, 72_000, 72))  # watermark 72 s >= 60 + 10: [0, 60) closes
>>> [(c.start_us // S, [t // S for t in c.ts_us], c.closed_by_offset) for c in r.closed]
[(0, [10, 50], 72)]
>>> w.add(at(59, 1.0, 73_000, 73)).outcome
'late'
>>> w.on_tick(100_000, 200)  # 27 s of silence: not idle yet
[]
>>> w.idle_close_due_ms  # estimate must reach 120 + 10 s: 58 s after the last reading
131000
>>> [(c.start_us // S, c.closed_by, c.closed_by_offset) for c in w.on_tick(131_000, 201)]
[(60, 'idle', 201)]
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Literal, NamedTuple

from streams.core.statecodec import WindowStateError, WindowTuple, decode_state, encode_state
from streams.core.types import ClosedWindow, ReadingPoint, WindowConfig

__all__ = ["AddResult", "MeterWindows", "Outcome", "WindowStateError"]

Outcome = Literal["accepted", "late", "duplicate"]

_NEVER = -(1 << 63)  # "nothing yet": below every int64 timestamp, and packs as int64
_PHASE_LIMIT = 1e9  # a phase value counts only if -1e9 < x < 1e9 (also rejects NaN and inf)


class AddResult(NamedTuple):
    """What :meth:`MeterWindows.add` did with a reading, and the windows its arrival closed."""

    outcome: Outcome
    closed: list[ClosedWindow]


class _Open:
    """One open window: sorted readings plus order-independent per-phase aggregates."""

    __slots__ = ("imax", "power", "start", "ts", "vcount", "vsum_mv")

    def __init__(self, start: int) -> None:
        self.start = start
        self.ts: list[int] = []
        self.power: list[float] = []
        self.vsum_mv = [0, 0, 0]
        self.vcount = [0, 0, 0]
        self.imax: list[float | None] = [None, None, None]

    def insert(self, point: ReadingPoint) -> bool:
        """Add a reading in ts order; False (and nothing changed) if its ts is already here."""
        ts, stamps = point.ts_us, self.ts
        if not stamps or ts > stamps[-1]:  # in order: the common case, no search
            stamps.append(ts)
            self.power.append(point.power_w)
        else:
            i = bisect_left(stamps, ts)
            if stamps[i] == ts:
                return False
            stamps.insert(i, ts)
            self.power.insert(i, point.power_w)
        volts = point.voltage_v
        if volts[0] is not None or volts[1] is not None or volts[2] is not None:
            for phase, v in enumerate(volts):
                if v is not None and -_PHASE_LIMIT < v < _PHASE_LIMIT:
                    self.vsum_mv[phase] += round(v * 1000.0)
                    self.vcount[phase] += 1
        amps = point.current_a
        if amps[0] is not None or amps[1] is not None or amps[2] is not None:
            imax = self.imax
            for phase, a in enumerate(amps):
                if a is not None and -_PHASE_LIMIT < a < _PHASE_LIMIT:
                    held = imax[phase]
                    if held is None or a > held:
                        imax[phase] = a
        return True

    def key(self) -> WindowTuple:
        return (self.start, self.ts, self.power, self.vsum_mv, self.vcount, self.imax)


class MeterWindows:
    """One meter's open windows, watermark and idle clock (see the module docstring).

    Parameters
    ----------
    config:
        Window size, lateness and idle timeout. Restore with the same ``size_us``;
        :meth:`from_bytes` refuses a state written for another window size.
    """

    __slots__ = ("_closed_up_to", "_config", "_last_append", "_open", "_wm")

    def __init__(self, config: WindowConfig) -> None:
        if config.size_us <= 0 or config.lateness_us < 0 or config.idle_timeout_us < 0:
            raise ValueError(f"invalid window config: {config}")
        self._config = config
        self._open: dict[int, _Open] = {}
        self._wm = _NEVER
        self._closed_up_to = _NEVER
        self._last_append = _NEVER

    @property
    def watermark_us(self) -> int | None:
        """The highest ``ts`` seen, or None before the first reading."""
        return None if self._wm == _NEVER else self._wm

    @property
    def last_append_ms(self) -> int | None:
        """Broker append time of the latest reading, or None before the first reading."""
        return None if self._last_append == _NEVER else self._last_append

    @property
    def closed_up_to_us(self) -> int | None:
        """End of the newest closed window: readings before it are late."""
        return None if self._closed_up_to == _NEVER else self._closed_up_to

    @property
    def open_window_starts(self) -> tuple[int, ...]:
        return tuple(sorted(self._open))

    @property
    def idle_close_due_ms(self) -> int | None:
        """The earliest tick append time at which :meth:`on_tick` closes a window (None if none open).

        The worker can keep these in a heap and load only the meters that are due.
        """
        if not self._open:
            return None
        oldest_end = min(self._open) + self._config.size_us
        need_us = max(
            self._config.idle_timeout_us, oldest_end + self._config.lateness_us - self._wm
        )
        return self._last_append + -(-need_us // 1000)  # ceil to whole milliseconds

    def add(self, point: ReadingPoint) -> AddResult:
        """Add one reading; return its outcome and the windows its watermark advance closed."""
        ts = point.ts_us
        self._last_append = max(self._last_append, point.append_ms)
        if ts < self._closed_up_to:
            return AddResult("late", [])
        size = self._config.size_us
        start = ts - ts % size
        window = self._open.get(start)
        if window is None:
            window = self._open[start] = _Open(start)
        if not window.insert(point):
            return AddResult("duplicate", [])
        if ts <= self._wm:
            return AddResult("accepted", [])
        self._wm = ts
        edge = ts - self._config.lateness_us
        edge -= edge % size  # windows ending at or before this have e + lateness <= watermark
        if edge <= self._closed_up_to:
            return AddResult("accepted", [])
        self._closed_up_to = edge
        return AddResult("accepted", self._close_through(edge, point.offset, "watermark"))

    def on_tick(self, tick_append_ms: int, tick_offset: int) -> list[ClosedWindow]:
        """Idle flush: close what the silence since the last reading implies (see module docs)."""
        if not self._open:
            return []
        silence_us = (tick_append_ms - self._last_append) * 1000
        if silence_us < self._config.idle_timeout_us:
            return []
        size = self._config.size_us
        edge = self._wm + silence_us - self._config.lateness_us
        edge -= edge % size
        if edge < min(self._open) + size:  # closes nothing: leave the state untouched
            return []
        self._closed_up_to = max(self._closed_up_to, edge)
        return self._close_through(edge, tick_offset, "idle")

    def flush_all(self) -> list[ClosedWindow]:
        """Close every open window now (``closed_by="flush"``, offset -1); they count as closed.

        Not used in normal operation, where windows close only by watermark or idle tick: a
        flush decides on no evidence. Meant for tests and for an explicit end of a finite replay.
        """
        if not self._open:
            return []
        edge = max(self._open) + self._config.size_us
        self._closed_up_to = max(self._closed_up_to, edge)
        return self._close_through(edge, -1, "flush")

    def _close_through(self, edge: int, offset: int, why: str) -> list[ClosedWindow]:
        size = self._config.size_us
        closed = []
        for start in sorted(self._open):
            if start + size > edge:
                break
            w = self._open.pop(start)
            closed.append(
                ClosedWindow(
                    start_us=start,
                    end_us=start + size,
                    ts_us=tuple(w.ts),
                    power_w=tuple(w.power),
                    voltage_sum_v=(w.vsum_mv[0] / 1000, w.vsum_mv[1] / 1000, w.vsum_mv[2] / 1000),
                    voltage_count=(w.vcount[0], w.vcount[1], w.vcount[2]),
                    current_max_a=(w.imax[0], w.imax[1], w.imax[2]),
                    closed_by_offset=offset,
                    closed_by=why,
                )
            )
        return closed

    def to_bytes(self) -> bytes:
        """Compact binary state (≈0.1 KB + 12 bytes per open reading); exact round trip."""
        return encode_state(
            self._config.size_us,
            self._wm,
            self._closed_up_to,
            self._last_append,
            [self._open[start].key() for start in sorted(self._open)],
        )

    @classmethod
    def from_bytes(cls, data: bytes, config: WindowConfig) -> MeterWindows:
        """Restore a state written by :meth:`to_bytes`; raises :class:`WindowStateError`."""
        state = decode_state(data, config.size_us)
        obj = cls(config)
        obj._wm, obj._closed_up_to, obj._last_append = (
            state.watermark,
            state.closed_up_to,
            state.last_append,
        )
        for start, ts, power, vsum, vcount, imax in state.windows:
            w = _Open(start)
            w.ts, w.power, w.vsum_mv, w.vcount, w.imax = ts, power, vsum, vcount, imax
            obj._open[start] = w
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MeterWindows):
            return NotImplemented
        return (
            self._config == other._config
            and (self._wm, self._closed_up_to, self._last_append)
            == (other._wm, other._closed_up_to, other._last_append)
            and {s: w.key() for s, w in self._open.items()}
            == {s: w.key() for s, w in other._open.items()}
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"MeterWindows(watermark_us={self.watermark_us}, closed_up_to_us={self.closed_up_to_us}, "
            f"last_append_ms={self.last_append_ms}, open={self.open_window_starts})"
        )
