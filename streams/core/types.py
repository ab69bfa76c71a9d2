"""Values that flow through the worker's core (shared by windowing, features and the model)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Per-meter event-time tumbling windows.

    size_us:
        Window length (default 60 s). Windows are aligned to the epoch: [k*size, (k+1)*size).
    lateness_us:
        How far behind the meter's own watermark (its highest ``ts`` seen) a reading may arrive
        and still join its window (default 10 s). A window [s, e) closes when the watermark
        reaches ``e + lateness``.
    idle_timeout_us:
        Arrival-time silence after which a tick may close a meter's windows (default 30 s).
    energy_max_gap_us:
        Longest time one reading's power is held when integrating energy (default 30 s).
    """

    size_us: int = 60_000_000
    lateness_us: int = 10_000_000
    idle_timeout_us: int = 30_000_000
    energy_max_gap_us: int = 30_000_000


@dataclass(frozen=True, slots=True)
class ReadingPoint:
    """What the windowing needs of one reading (decoded from ``Reading``).

    ``append_ms`` is the broker's append time of the record (LogAppendTime), the clock that
    ticks share; ``offset`` is its Kafka offset (kept so the window that a reading closes knows it).
    """

    ts_us: int
    power_w: float
    append_ms: int
    offset: int = -1
    voltage_v: tuple[float | None, float | None, float | None] = (None, None, None)
    current_a: tuple[float | None, float | None, float | None] = (None, None, None)


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A finished window of one meter, ready for feature extraction.

    ``ts_us``/``power_w`` are the window's readings sorted by ``ts``; the per-phase aggregates
    only count frames that carried that phase. ``closed_by_offset`` is the Kafka offset of the
    record (reading or tick) whose processing closed the window, -1 if unknown.
    """

    start_us: int
    end_us: int
    ts_us: tuple[int, ...]
    power_w: tuple[float, ...]
    voltage_sum_v: tuple[float, float, float] = (0.0, 0.0, 0.0)
    voltage_count: tuple[int, int, int] = (0, 0, 0)
    current_max_a: tuple[float | None, float | None, float | None] = (None, None, None)
    closed_by_offset: int = -1
    closed_by: str = "watermark"  # "watermark" or "idle"

    @property
    def n(self) -> int:
        return len(self.ts_us)


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """What the model says about one window."""

    score: float
    threshold: float | None
    is_anomaly: bool
    attribution: dict[str, float] = field(default_factory=dict)
    warming_up: bool = False
