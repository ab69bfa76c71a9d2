"""Which anomalies to inject, and when: a deterministic schedule per meter and kind.

Each (meter, kind) pair is a renewal process on its own random stream: gaps between starts are
Gamma-distributed with shape 4 and mean ``1 / rate`` days, so counts are steadier than a
Poisson process with the same rate (a short demo reliably shows a few of each kind). A new
event never starts before the previous one of the same kind on that meter has ended (plus an
hour), so labels of one kind never overlap on one meter. Switching a kind off or changing its
rate leaves the other kinds' schedules, and the normal load, exactly as they were.

>>> config = AnomalyConfig.only("voltage_sag", rate=2.0)
>>> config.enabled_kinds
('voltage_sag',)
>>> AnomalyConfig.none().enabled_kinds
()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeAlias, get_args
from zoneinfo import ZoneInfo

import numpy as np

from connector.simulator.localtime import DAY_US, HOUR_US, LocalDay
from connector.simulator.traits import MeterTraits, Stream, meter_rng

AnomalyKind: TypeAlias = Literal[
    "ev_unusual_hour", "stuck_appliance", "standby_creep", "phase_imbalance", "voltage_sag"
]
ANOMALY_KINDS: Final[tuple[AnomalyKind, ...]] = get_args(AnomalyKind)
_MINUTE_US: Final = 60_000_000


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """Mean anomaly starts per meter-day, per kind; ``0`` switches a kind off.

    The defaults favour demos and tests: a 2-day run of 5 meters holds a few of each kind.
    For long evaluation runs lower them (e.g. ``standby_creep=0.02``): a creep lasts days.

    * ``ev_unusual_hour``: a 7-11 kW charging session starting 01:00-05:00 local, on a home
      that normally charges in the evening or has no EV at all; lasts 1-5 hours.
    * ``stuck_appliance``: a 2-3 kW load on one phase stuck on for 3-8 hours.
    * ``standby_creep``: standby load rising linearly by 100-200 W over 1.5-4 days, then
      gone (the label spans the ramp; the drop at its end is part of it).
    * ``phase_imbalance``: one phase carries 92-97 % of the load for 1-3 hours (three-phase
      meters only). Total power is unchanged; the per-phase currents show it.
    * ``voltage_sag``: one phase (or, 40 % of the time, all) at 195-205 V for 1-10 minutes.
      Normal voltage stays within 216-250 V, so below 210 V means a sag.
    """

    ev_unusual_hour: float = 0.4
    stuck_appliance: float = 0.3
    standby_creep: float = 0.25
    phase_imbalance: float = 0.45
    voltage_sag: float = 0.5

    def __post_init__(self) -> None:
        for name in ANOMALY_KINDS:
            rate = getattr(self, name)
            if not (math.isfinite(rate) and rate >= 0):
                raise ValueError(
                    f"AnomalyConfig.{name} must be a rate >= 0 per meter-day, got {rate!r}"
                )

    @classmethod
    def none(cls) -> AnomalyConfig:
        """No anomalies at all."""
        return cls(**{name: 0.0 for name in ANOMALY_KINDS})

    @classmethod
    def only(cls, *kinds: AnomalyKind, rate: float | None = None) -> AnomalyConfig:
        """Just ``kinds``, at their default rates or at ``rate``."""
        unknown = set(kinds) - set(ANOMALY_KINDS)
        if unknown:
            raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; known: {ANOMALY_KINDS}")
        defaults = cls()
        return replace(
            cls.none(),
            **{kind: getattr(defaults, kind) if rate is None else rate for kind in kinds},
        )

    def rate(self, kind: AnomalyKind) -> float:
        """Mean starts of ``kind`` per meter-day."""
        return float(getattr(self, kind))

    @property
    def enabled_kinds(self) -> tuple[AnomalyKind, ...]:
        """Kinds with a rate above zero, in :data:`ANOMALY_KINDS` order."""
        return tuple(kind for kind in ANOMALY_KINDS if self.rate(kind) > 0)


@dataclass(frozen=True, slots=True)
class InjectedAnomaly:
    """One scheduled anomaly on meter ``meter_index`` over ``[start_us, end_us)``.

    ``phase`` is the phase it acts on (``None``: all phases of the meter). ``magnitude`` is
    watts for the load kinds and the creep's final extra load, the dominant phase's share of
    the load for ``phase_imbalance``, and the sagging voltage for ``voltage_sag``.
    """

    meter_index: int
    kind: AnomalyKind
    start_us: int
    end_us: int
    phase: int | None
    magnitude: float


class _Track:
    """The renewal process of one kind on one meter."""

    def __init__(
        self, kind: AnomalyKind, rate: float, traits: MeterTraits, seed: int, start_us: int
    ) -> None:
        self.kind = kind
        self.traits = traits
        self.rng = meter_rng(seed, traits.index, Stream.ANOMALIES, ANOMALY_KINDS.index(kind))
        self.mean_gap_days = 1.0 / rate
        # Start in the middle of a gap, as if the process had been running before.
        self.next_anchor_us = start_us + round(self._gap_us() * self.rng.random())

    def _gap_us(self) -> int:
        return round(self.rng.gamma(4.0, self.mean_gap_days / 4.0) * DAY_US)

    def take(self, tz: ZoneInfo) -> InjectedAnomaly:
        """Place the event at the pending anchor and move the anchor on."""
        event = _PLACERS[self.kind](self.traits, self.next_anchor_us, self.rng, tz)
        self.next_anchor_us = max(self.next_anchor_us + self._gap_us(), event.end_us + HOUR_US)
        return event


class AnomalySchedule:
    """Every meter's anomalies in start order, generated lazily up to a given instant.

    >>> from connector.simulator.traits import draw_traits
    >>> meters = [draw_traits(7, i, f"sim-{i + 1:04d}") for i in range(3)]
    >>> schedule = AnomalySchedule(AnomalyConfig(), meters, seed=7, start_us=0, tz=ZoneInfo("UTC"))
    >>> events = schedule.starting_before(2 * DAY_US)
    >>> all(0 <= e.start_us < 2 * DAY_US and e.end_us > e.start_us for e in events)
    True
    """

    def __init__(
        self,
        config: AnomalyConfig,
        meters: Sequence[MeterTraits],
        *,
        seed: int,
        start_us: int,
        tz: ZoneInfo,
    ) -> None:
        self._tz = tz
        self._tracks = [
            _Track(kind, config.rate(kind), traits, seed, start_us)
            for traits in meters
            for kind in config.enabled_kinds
            if kind != "phase_imbalance" or traits.phases == 3
        ]
        self._pending: list[InjectedAnomaly] = []  # placed, start not yet handed out

    def starting_before(self, until_us: int) -> list[InjectedAnomaly]:
        """Events starting before ``until_us`` not returned by an earlier call, by start."""
        for track in self._tracks:
            while track.next_anchor_us < until_us:
                self._pending.append(track.take(self._tz))
        ready = [e for e in self._pending if e.start_us < until_us]
        self._pending = [e for e in self._pending if e.start_us >= until_us]
        return sorted(ready, key=lambda e: (e.start_us, e.meter_index, e.kind))


def _seconds(us: float) -> int:
    """A duration in whole seconds, so labels read cleanly in ISO-8601."""
    return round(us / 1_000_000) * 1_000_000


def _next_second(us: float) -> int:
    """The first whole second at or after ``us`` (never before the anchor, so never before
    the simulation's start)."""
    return math.ceil(us / 1_000_000) * 1_000_000


def _night_window_start(anchor_us: int, tz: ZoneInfo, rng: np.random.Generator) -> int:
    """A random instant in the first 01:00-05:00 local window ending after ``anchor_us``."""
    day = LocalDay.containing(tz, anchor_us)
    opens, closes = day.at_hour(1.0), day.at_hour(5.0)
    if anchor_us >= closes - _MINUTE_US:
        day = day.following(tz)
        opens, closes = day.at_hour(1.0), day.at_hour(5.0)
    opens = max(opens, anchor_us)
    return min(_next_second(opens + rng.random() * (closes - opens)), closes - 1_000_000)


def _ev_unusual_hour(
    traits: MeterTraits, anchor: int, rng: np.random.Generator, tz: ZoneInfo
) -> InjectedAnomaly:
    start = _night_window_start(anchor, tz, rng)
    charger = traits.ev_charger_w or (11_000.0 if traits.phases == 3 else 7_400.0)
    watts = round(charger * rng.uniform(0.97, 1.0))
    hours = rng.uniform(10.0, 35.0) * 1000 / watts
    end = start + _seconds(hours * HOUR_US)
    return InjectedAnomaly(traits.index, "ev_unusual_hour", start, end, None, float(watts))


def _stuck_appliance(
    traits: MeterTraits, anchor: int, rng: np.random.Generator, tz: ZoneInfo
) -> InjectedAnomaly:
    start = _next_second(anchor)
    end = start + _seconds(rng.uniform(3.0, 8.0) * HOUR_US)
    watts = float(round(rng.uniform(2000.0, 3000.0)))
    return InjectedAnomaly(
        traits.index, "stuck_appliance", start, end, traits.pick_phase(rng), watts
    )


def _standby_creep(
    traits: MeterTraits, anchor: int, rng: np.random.Generator, tz: ZoneInfo
) -> InjectedAnomaly:
    start = _next_second(anchor)
    end = start + _seconds(rng.uniform(1.5, 4.0) * DAY_US)
    watts = float(round(rng.uniform(100.0, 200.0)))
    return InjectedAnomaly(traits.index, "standby_creep", start, end, traits.pick_phase(rng), watts)


def _phase_imbalance(
    traits: MeterTraits, anchor: int, rng: np.random.Generator, tz: ZoneInfo
) -> InjectedAnomaly:
    start = _next_second(anchor)
    end = start + _seconds(rng.uniform(1.0, 3.0) * HOUR_US)
    share = round(float(rng.uniform(0.92, 0.97)), 3)
    return InjectedAnomaly(
        traits.index, "phase_imbalance", start, end, traits.pick_phase(rng), share
    )


def _voltage_sag(
    traits: MeterTraits, anchor: int, rng: np.random.Generator, tz: ZoneInfo
) -> InjectedAnomaly:
    start = _next_second(anchor)
    end = start + _seconds(rng.uniform(1.0, 10.0) * _MINUTE_US)
    phase = None if rng.random() < 0.4 else traits.pick_phase(rng)
    level = round(float(rng.uniform(196.0, 204.0)), 1)
    return InjectedAnomaly(traits.index, "voltage_sag", start, end, phase, level)


_Placer: TypeAlias = Callable[[MeterTraits, int, np.random.Generator, ZoneInfo], InjectedAnomaly]
_PLACERS: Final[dict[AnomalyKind, _Placer]] = {
    "ev_unusual_hour": _ev_unusual_hour,
    "stuck_appliance": _stuck_appliance,
    "standby_creep": _standby_creep,
    "phase_imbalance": _phase_imbalance,
    "voltage_sag": _voltage_sag,
}
