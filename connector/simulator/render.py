"""Readings for all meters over a run of time steps, as numpy arrays (meters x steps).

Everything here is elementwise arithmetic on per-meter rows, so a meter's values never depend
on which other meters share the arrays, nor on where a run of steps is cut: per-step noise
comes from fixed blocks of steps (:class:`NoiseBlocks`), appliance runs and knots from the
day plan. Transcendental functions are avoided on per-step arrays on purpose: their SIMD and
scalar code paths may differ in the last bit, and the output must be bit-for-bit repeatable.

Physics, per meter and phase: load split over phases -> total power with noise, rounded to
whole watts (as the Pulse reports it); voltage = nominal - evening dip - slow drift - line
drop (R x I) + noise, kept within 216-250 V, 0.1 V resolution; current = power share / voltage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from connector.simulator.anomalies import InjectedAnomaly
from connector.simulator.appliances import KNOT_US, knot_count
from connector.simulator.fleet import DayPlan, Households
from connector.simulator.traits import MeterTraits, Stream, meter_rng

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

NOISE_BLOCK_STEPS: Final = 512
"""Per-step noise is drawn per meter in blocks of this many steps, keyed by block number."""

_NORMAL_V: Final = (216.0, 250.0)
_SAG_V: Final = (195.0, 205.0)
_SIGNAL_SHARE: Final = 0.02  # frames that carry signal strength
# How deep the evening voltage dip is at each wall-clock hour 0..24 (1 = the meter's dip_v).
_GRID_DIP: Final = np.interp(
    np.arange(25.0),
    [0, 5, 7.5, 9, 12, 16, 18.5, 21, 24],
    [0.15, 0.1, 0.6, 0.5, 0.4, 0.5, 1.0, 0.7, 0.15],
)


class NoiseBlocks:
    """Per-step random numbers, ``(meters, steps, 6)``: 5 standard normals and 1 uniform.

    Block ``b`` of meter ``m`` (steps ``b * NOISE_BLOCK_STEPS`` onwards) comes from its own
    generator, so any run of steps reads the same numbers however the steps are grouped.
    """

    def __init__(self, seed: int, meters: int) -> None:
        self._seed = seed
        self._meters = meters
        self._block = -1
        self._values: Floats = np.empty((meters, 0, 6))

    def window(self, first_step: int, stop_step: int) -> Floats:
        """Noise for steps ``[first_step, stop_step)``, which must lie in one block."""
        block, offset = divmod(first_step, NOISE_BLOCK_STEPS)
        if stop_step - block * NOISE_BLOCK_STEPS > NOISE_BLOCK_STEPS:
            raise ValueError("a noise window must not cross a block boundary")
        if block != self._block:
            self._values = np.stack([self._draw(m, block) for m in range(self._meters)])
            self._block = block
        return self._values[:, offset : offset + stop_step - first_step]

    def _draw(self, meter: int, block: int) -> Floats:
        rng = meter_rng(self._seed, meter, Stream.NOISE, block)
        normals = rng.standard_normal((NOISE_BLOCK_STEPS, 5))
        return np.concatenate([normals, rng.random((NOISE_BLOCK_STEPS, 1))], axis=1)


@dataclass(frozen=True, eq=False)
class Electrical:
    """What the meters measured over the steps: arrays shaped (meters, steps[, 3])."""

    power_w: Floats
    voltage_v: Floats
    current_a: Floats
    has_electrical: NDArray[np.bool_]  # voltage and current present in this frame
    signal_dbm: Ints  # 0 where the frame carries none


def _interpolate(knots: Floats, position: Floats) -> Floats:
    """Linear interpolation along axis 1 of ``knots`` at fractional ``position`` (steps)."""
    index = np.minimum(position.astype(np.int64), knots.shape[1] - 2)
    weight = position - index
    if knots.ndim == 3:
        weight = weight[:, None]
    values: Floats = knots[:, index] * (1.0 - weight) + knots[:, index + 1] * weight
    return values


def _runs(plan: DayPlan, ts: Ints, meters: int) -> Floats:
    """Sum of the appliance runs at each step, (meters, steps, 3), by a cumulative sum over
    +watts at each run's first step and -watts after its last (exact: whole watts)."""
    n = len(ts)
    live = (plan.run_start_us <= ts[-1]) & (plan.run_end_us > ts[0])
    row = plan.run_meter[live] * (n + 1)
    edges = np.concatenate(
        [
            row + np.searchsorted(ts, plan.run_start_us[live]),
            row + np.searchsorted(ts, plan.run_end_us[live]),
        ]
    )
    watts = np.concatenate([plan.run_watts[live], -plan.run_watts[live]])
    bins = (edges[:, None] * 3 + np.arange(3)).ravel()
    # With weights bincount returns floats; asarray only tells the type checker so.
    steps = np.asarray(
        np.bincount(bins, weights=watts.ravel(), minlength=meters * (n + 1) * 3), dtype=np.float64
    )
    return np.cumsum(steps.reshape(meters, n + 1, 3), axis=1)[:, :n]


_Span = tuple[InjectedAnomaly, int, int]  # an anomaly and the step range [lo, hi) it covers


def render(
    homes: Households,
    plan: DayPlan,
    ts: Ints,
    noise: Floats,
    anomalies: Sequence[InjectedAnomaly],
) -> Electrical:
    """Readings at instants ``ts`` (inside ``plan.day``) for every meter, anomalies injected."""
    hours = plan.day.wall_hours(ts)
    knot_position = np.minimum((ts - plan.day.start_us) / KNOT_US, knot_count(plan.day) - 1.0)
    spans = [span for a in anomalies if (span := _steps_inside(a, ts))[2] > span[1]]

    loads = _loads(homes, plan, ts, hours=hours, knot_position=knot_position, spans=spans)
    total = loads[:, :, 0] + loads[:, :, 1] + loads[:, :, 2]
    shares = loads / total[:, :, None]
    for anomaly, lo, hi in spans:
        if anomaly.kind == "phase_imbalance":
            rest = (1.0 - anomaly.magnitude) / 2
            shares[anomaly.meter_index, lo:hi] = rest
            shares[anomaly.meter_index, lo:hi, anomaly.phase or 0] = anomaly.magnitude
    power = np.rint(np.maximum(total + (3.0 + 0.01 * total) * noise[:, :, 0], 5.0))
    phase_power = power[:, :, None] * shares
    voltage = _voltage(
        homes,
        plan,
        hours=hours,
        knot_position=knot_position,
        phase_power=phase_power,
        noise=noise,
        spans=spans,
    )

    tenth_second = (ts // 1_000_000) % 10 == 0  # Kaifa/Aidon: electrical values every 10 s
    signal = np.rint(homes.signal_dbm[:, None] + 3.0 * noise[:, :, 4]).astype(np.int64)
    return Electrical(
        power_w=power,
        voltage_v=voltage,
        current_a=np.round(phase_power / voltage, 2),
        has_electrical=homes.every_frame[:, None] | tenth_second[None, :],
        signal_dbm=np.where(noise[:, :, 5] < _SIGNAL_SHARE, np.minimum(signal, -1), 0),
    )


def _loads(
    homes: Households,
    plan: DayPlan,
    ts: Ints,
    *,
    hours: Floats,
    knot_position: Floats,
    spans: Sequence[_Span],
) -> Floats:
    """Watts per meter, step and phase: base + everyday activity + appliance runs + anomalies."""
    activity = _interpolate(plan.activity, hours)
    everyday = homes.everyday_w[:, None] * activity * _interpolate(plan.wobble, knot_position)
    loads = (homes.base_w[:, None] + everyday)[:, :, None] * homes.split[:, None, :]
    loads += _runs(plan, ts, len(homes.traits))
    for anomaly, lo, hi in spans:
        row = loads[anomaly.meter_index, lo:hi]
        _add_load(row, homes.traits[anomaly.meter_index], anomaly, ts[lo:hi])
    return loads


def _voltage(
    homes: Households,
    plan: DayPlan,
    *,
    hours: Floats,
    knot_position: Floats,
    phase_power: Floats,
    noise: Floats,
    spans: Sequence[_Span],
) -> Floats:
    """Volts per meter, step and phase (0.1 V resolution), sags injected."""
    dip = homes.dip_v[:, None] * np.interp(hours, np.arange(25.0), _GRID_DIP)
    voltage = homes.nominal_v[:, None, :] - dip[:, :, None]
    voltage += _interpolate(plan.drift, knot_position) + 0.35 * noise[:, :, 1:4]
    # The household's own current drops voltage on the line to the transformer.
    voltage -= homes.line_ohm[:, None, None] * (phase_power / 230.0)
    voltage = np.clip(voltage, *_NORMAL_V)
    for anomaly, lo, hi in spans:
        if anomaly.kind == "voltage_sag":
            m = anomaly.meter_index
            sagging = range(homes.traits[m].phases) if anomaly.phase is None else [anomaly.phase]
            for p in sagging:
                level = anomaly.magnitude + 0.4 * noise[m, lo:hi, 1 + p]
                voltage[m, lo:hi, p] = np.clip(level, *_SAG_V)
    rounded: Floats = np.round(voltage, 1)
    return rounded


def _steps_inside(anomaly: InjectedAnomaly, ts: Ints) -> _Span:
    """The anomaly with the index range of the steps inside its span."""
    lo, hi = np.searchsorted(ts, [anomaly.start_us, anomaly.end_us])
    return anomaly, int(lo), int(hi)


def _add_load(row: Floats, traits: MeterTraits, anomaly: InjectedAnomaly, ts: Ints) -> None:
    """Add an anomalous load to ``row`` (a meter's loads at ``ts``, a view); other kinds
    change nothing here."""
    if anomaly.kind in ("stuck_appliance", "ev_unusual_hour"):
        row += np.array(traits.spread(anomaly.magnitude, anomaly.phase))
    elif anomaly.kind == "standby_creep":
        # Ramps from 0 at the start to the full extra load at the end, then is gone.
        ramp = anomaly.magnitude * ((ts - anomaly.start_us) / (anomaly.end_us - anomaly.start_us))
        row[:, anomaly.phase or 0] += ramp
