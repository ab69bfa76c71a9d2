"""The simulator facade: seeded households in, time-ordered ``Reading`` batches out.

Generation is lazy and unbounded: one local day is planned at a time (for all meters), and
readings are rendered a few thousand at a time, so memory stays flat however long it runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from connector.simulator.anomalies import AnomalyConfig, AnomalySchedule, InjectedAnomaly
from connector.simulator.appliances import ApplianceState, plan_day
from connector.simulator.counters import EnergyCounters
from connector.simulator.fleet import DayPlan, Households
from connector.simulator.labels import AnomalyLabel
from connector.simulator.localtime import LocalDay
from connector.simulator.records import build_records
from connector.simulator.render import NOISE_BLOCK_STEPS, NoiseBlocks, render
from connector.simulator.traits import MeterTraits, draw_traits
from schemas.records import ReadingRecord

_READINGS_PER_RENDER: Final = 16_384  # bounds memory with many meters; output is unaffected
_READINGS_PER_BATCH: Final = 8_192
_MAX_INTERVAL_S: Final = 3600.0


class HouseholdSimulator:
    """Simulated smart meters in households, deterministic from ``seed``.

    Parameters
    ----------
    meters:
        How many meters; their ids are ``sim-0001``, ``sim-0002``, ... (zero-padded to at
        least 4 digits, wider beyond 9999 meters so ids sort in meter order).
    start_us:
        Event time of the first reading, microseconds since the epoch, UTC.
    interval_s:
        Time between a meter's readings (Tibber Pulse: about 2 s). Every meter reads at
        ``start_us + k * interval``; ties are ordered by meter id.
    seed:
        Everything random derives from ``(seed, meter index)``: a meter's readings do not
        depend on the number of meters, nor on how the steps are batched.
    tz:
        IANA zone of the households: daily rhythm, midnight and hour resets, ``ts_offset_minutes``.
    anomalies:
        Which labelled anomalies to inject; defaults to :class:`AnomalyConfig` (all kinds).

    Each meter has a traits draw (:attr:`traits`: phases, voltage every frame or every 10 s,
    appliances, EV). Records are ``Reading`` dicts with every schema field present;
    ``received_at`` equals ``ts`` (the connector stamps its own clock). Production, cost,
    currency and reactive fields are None (no solar, no price deal).

    Energy counters integrate power by **step-hold**: each reading's power is held constant
    until the next reading (details in :mod:`connector.simulator.counters`). They count from
    local midnight, the hour shift and the first reading of the run (no history before it).

    When it works and when not: readings are realistic at Tibber's 1-10 s intervals. With
    the every-10-s voltage pattern, voltage frames are those whose UTC second is a multiple
    of 10, so an interval that does not divide 10 s thins them out, and a one-minute
    ``voltage_sag`` may then fall between them. The default anomaly rates suit short demos,
    not long evaluations (see :class:`AnomalyConfig`).

    Examples
    --------
    >>> sim = HouseholdSimulator(3, start_us=1_767_222_000_000_000, seed=42)  # 2026-01-01 00:00 Oslo
    >>> first = sim.next_batch(2)
    >>> [(r["meter_id"], r["ts"] - sim.start_us) for r in first]
    [('sim-0001', 0), ('sim-0002', 0), ('sim-0003', 0), ('sim-0001', 2000000), ('sim-0002', 2000000), ('sim-0003', 2000000)]
    >>> first[0]["source"], first[0]["ts_offset_minutes"], first[0]["accumulated_consumption_kwh"]
    ('simulator', 60, 0.0)
    >>> day = 86_400_000_000
    >>> readings = sum(len(batch) for batch in sim.batches(end_us=sim.start_us + day))
    >>> len(first) + readings == 3 * 43_200  # a day of 2 s steps
    True
    >>> labels = sim.labels_until(sim.start_us + 2 * day)
    >>> labels == HouseholdSimulator(3, start_us=sim.start_us, seed=42).labels_until(sim.start_us + 2 * day)
    True
    """

    def __init__(
        self,
        meters: int = 5,
        *,
        start_us: int,
        interval_s: float = 2.0,
        seed: int = 0,
        tz: str = "Europe/Oslo",
        anomalies: AnomalyConfig | None = None,
    ) -> None:
        if meters < 1:
            raise ValueError(f"meters must be >= 1, got {meters}")
        if not (math.isfinite(interval_s) and 0 < interval_s <= _MAX_INTERVAL_S):
            raise ValueError(f"interval_s must be in (0, {_MAX_INTERVAL_S:g}], got {interval_s!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        try:
            self._tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {tz!r}; use an IANA name like 'Europe/Oslo'"
            ) from exc
        self.start_us = int(start_us)
        self.interval_us = max(1, round(interval_s * 1_000_000))
        self.seed = seed
        self.anomalies = anomalies if anomalies is not None else AnomalyConfig()
        width = max(4, len(str(meters)))
        self.meter_ids: tuple[str, ...] = tuple(f"sim-{i + 1:0{width}d}" for i in range(meters))
        self.traits: tuple[MeterTraits, ...] = tuple(
            draw_traits(seed, i, meter_id) for i, meter_id in enumerate(self.meter_ids)
        )
        self._homes = Households.of(self.traits)
        self._day = LocalDay.containing(self._tz, self.start_us)
        self._states: list[ApplianceState] = []  # planning starts with the first render
        self._plan: DayPlan | None = None
        self._noise = NoiseBlocks(seed, meters)
        self._counters = EnergyCounters(np.array([t.initial_register_kwh for t in self.traits]))
        self._schedule = self._new_schedule()
        self._active: list[InjectedAnomaly] = []
        self._render_steps = max(1, min(NOISE_BLOCK_STEPS, _READINGS_PER_RENDER // meters))
        self._rendered_steps = 0
        self._emitted_steps = 0
        self._pending: list[ReadingRecord] = []  # rendered whole steps not handed out yet
        self._pending_at = 0

    @property
    def default_batch_steps(self) -> int:
        """Steps per batch when :meth:`batches` is not told: about 8k readings."""
        return max(1, _READINGS_PER_BATCH // len(self.meter_ids))

    @property
    def next_ts_us(self) -> int:
        """Event time of the next step :meth:`next_batch` will return."""
        return self.start_us + self._emitted_steps * self.interval_us

    def next_batch(self, steps: int) -> list[ReadingRecord]:
        """The next ``steps`` time steps: one reading per meter per step, in time order."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        wanted = steps * len(self.meter_ids)
        batch: list[ReadingRecord] = []
        while wanted > 0:
            if self._pending_at == len(self._pending):
                self._pending, self._pending_at = self._render_next(), 0
            take = min(wanted, len(self._pending) - self._pending_at)
            if not batch and self._pending_at == 0 and take == len(self._pending):
                batch = self._pending  # the common case: hand over the whole list, no copy
            else:
                batch.extend(self._pending[self._pending_at : self._pending_at + take])
            self._pending_at += take
            wanted -= take
        self._emitted_steps += steps
        return batch

    def batches(
        self, end_us: int | None = None, *, steps: int | None = None
    ) -> Iterator[list[ReadingRecord]]:
        """Batches of up to ``steps`` time steps until event time ``end_us`` (exclusive).

        ``end_us=None`` runs forever. Continues where the previous call stopped; the readings
        are the same however the run is cut into batches and calls.
        """
        per_batch = steps if steps is not None else self.default_batch_steps
        if per_batch < 1:
            raise ValueError(f"steps must be >= 1, got {per_batch}")
        while True:
            count = per_batch
            if end_us is not None:
                last_step = -(-(end_us - self.start_us) // self.interval_us)
                count = min(count, last_step - self._emitted_steps)
                if count <= 0:
                    return
            yield self.next_batch(count)

    def labels_until(self, end_us: int) -> list[AnomalyLabel]:
        """Labels of every anomaly starting before ``end_us``, by start time, then meter.

        Computed from the seed alone (no readings are generated), so any caller gets the same
        list at any time.
        """
        return [
            AnomalyLabel(self.meter_ids[e.meter_index], e.start_us, e.end_us, e.kind)
            for e in self._new_schedule().starting_before(end_us)
        ]

    def _new_schedule(self) -> AnomalySchedule:
        return AnomalySchedule(
            self.anomalies, self.traits, seed=self.seed, start_us=self.start_us, tz=self._tz
        )

    def _plan_day(self, previous: DayPlan | None) -> DayPlan:
        if not self._states:
            self._states = [
                ApplianceState.initial(t, self._day.start_us, self.seed) for t in self.traits
            ]
        plans = [
            plan_day(t, s, self._day, self.seed)
            for t, s in zip(self.traits, self._states, strict=True)
        ]
        return DayPlan.stack(self._day, plans, previous)

    def _render_next(self) -> list[ReadingRecord]:
        """Render the next run of steps: within one local day and one noise block."""
        first = self._rendered_steps
        if self._plan is None:
            self._plan = self._plan_day(None)
        while self.start_us + first * self.interval_us >= self._day.end_us:
            self._day = self._day.following(self._tz)
            self._plan = self._plan_day(self._plan)
        day_stop = -(-(self._day.end_us - self.start_us) // self.interval_us)
        block_stop = (first // NOISE_BLOCK_STEPS + 1) * NOISE_BLOCK_STEPS
        stop = min(first + self._render_steps, day_stop, block_stop)
        ts = self.start_us + np.arange(first, stop, dtype=np.int64) * self.interval_us
        self._rendered_steps = stop

        self._active.extend(self._schedule.starting_before(int(ts[-1]) + 1))
        self._active = [a for a in self._active if a.end_us > ts[0]]
        electrical = render(
            self._homes, self._plan, ts, self._noise.window(first, stop), self._active
        )
        counters = self._counters.advance(self._day, ts, electrical.power_w)
        offset_minutes = self._day.offsets_us(ts) // 60_000_000
        return build_records(
            self.meter_ids,
            ts,
            offset_minutes,
            three_phase=self._homes.three_phase,
            electrical=electrical,
            counters=counters,
        )
