"""Features of one closed window, as named floats, and the vector the detector sees.

:class:`FeatureSpec` says which features make the vector and in what order; its
:meth:`~FeatureSpec.fingerprint` goes into the model id, so a changed spec never restores an
incompatible model. :func:`compute_features` is pure and always returns finite numbers:

* power: ``power_mean_w``, ``power_std_w`` (population), ``power_max_w``, ``power_min_w``
  over the window's readings; ``energy_wh`` by :func:`streams.core.energy.window_energy_wh`.
* voltage: ``voltage_min_mean_v`` is the lowest per-phase mean voltage among the phases that
  reported (a sagging phase shows even when the others are fine); ``voltage_lN_mean_v`` per
  phase. A phase that never reported gets the nominal voltage (230 V).
* current: ``current_imbalance`` = max phase current / mean of the phase currents (per-phase
  maxima of the window, magnitudes), 1.0 with fewer than two phases or no current;
  ``current_lN_max_a`` per phase, 0.0 when the phase never reported.
* ``n_readings``; ``tod_sin``/``tod_cos``: the local hour of day of the window start on the
  unit circle, in the spec's IANA time zone, so DST is right (an EV charging at 3 a.m. looks
  unusual only if the model knows it is 3 a.m.).

Any value that would come out non-finite (a corrupt reading, overflow) is clamped to ±1e15 or,
if NaN, replaced by 0.0: one bad frame must not poison the scaler or the forest.

The default vector has 8 dimensions: RCF picks cut dimensions in proportion to their range, so
every extra dimension dilutes the others. ``energy_wh`` is off by default: for a full window it
is the time-weighted mean power times the size, nearly collinear with ``power_mean_w``, and it
drops when the meter misses part of the window, which is a data gap rather than unusual use.

>>> from streams.core.types import ClosedWindow
>>> S = 1_000_000
>>> w = ClosedWindow(0, 60 * S, (0, 30 * S), (100.0, 300.0), (460.0, 0.0, 0.0), (2, 0, 0),
...                  (1.0, 3.0, None))
>>> f = compute_features(w, FeatureSpec())
>>> [(k, round(v, 3)) for k, v in f.items()]  # doctest: +NORMALIZE_WHITESPACE
[('power_mean_w', 200.0), ('power_std_w', 100.0), ('power_max_w', 300.0),
 ('power_min_w', 100.0), ('voltage_min_mean_v', 230.0), ('current_imbalance', 1.5),
 ('tod_sin', 0.0), ('tod_cos', 1.0)]
>>> vector(f, FeatureSpec())[:2]
[200.0, 100.0]
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.core.energy import window_energy_wh
from streams.core.types import ClosedWindow

__all__ = ["DEFAULT_FEATURES", "FEATURE_STD_FLOORS", "FeatureSpec", "compute_features", "vector"]

DEFAULT_FEATURES: tuple[str, ...] = (
    "power_mean_w",
    "power_std_w",
    "power_max_w",
    "power_min_w",
    "voltage_min_mean_v",
    "current_imbalance",
)
TIME_OF_DAY = ("tod_sin", "tod_cos")

# The smallest standard deviation the scaler assumes per feature, in the feature's own unit:
# a feature that was constant so far still moves by "one sigma" only for a change this big.
FEATURE_STD_FLOORS: dict[str, float] = {
    "power_mean_w": 5.0,
    "power_std_w": 5.0,
    "power_max_w": 5.0,
    "power_min_w": 5.0,
    "energy_wh": 0.1,
    "voltage_min_mean_v": 0.5,
    "current_imbalance": 0.05,
    "n_readings": 1.0,
    **{f"voltage_l{i}_mean_v": 0.5 for i in (1, 2, 3)},
    **{f"current_l{i}_max_a": 0.1 for i in (1, 2, 3)},
    "tod_sin": 0.05,
    "tod_cos": 0.05,
}
KNOWN_FEATURES = frozenset(FEATURE_STD_FLOORS) - set(TIME_OF_DAY)

_LIMIT = 1e15
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which features form the detector's vector.

    Parameters
    ----------
    features:
        Window features in vector order (names from :data:`FEATURE_STD_FLOORS`, without the
        time-of-day pair).
    time_of_day:
        Append ``tod_sin, tod_cos`` of the window start's local hour.
    tz:
        IANA zone for the local hour, e.g. ``"Europe/Oslo"``.
    nominal_voltage_v:
        Stands in for a phase's voltage when no frame carried it.
    energy_max_gap_us:
        The energy rule's cap on a hold; must equal ``WindowConfig.energy_max_gap_us``.
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    time_of_day: bool = True
    tz: str = "UTC"
    nominal_voltage_v: float = 230.0
    energy_max_gap_us: int = 30_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))  # a list would break hashing
        unknown = [n for n in self.features if n not in KNOWN_FEATURES]
        if unknown:
            hint = " (use time_of_day=True)" if set(unknown) & set(TIME_OF_DAY) else ""
            raise ValueError(f"unknown features {unknown}{hint}; known: {sorted(KNOWN_FEATURES)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"duplicate features in {self.features}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    @property
    def names(self) -> tuple[str, ...]:
        """Every dimension of the vector, in order."""
        return self.features + TIME_OF_DAY if self.time_of_day else self.features

    def std_floors(self) -> tuple[float, ...]:
        """Per-dimension std floors for :class:`~streams.core.scaling.OnlineScaler`."""
        return tuple(FEATURE_STD_FLOORS[n] for n in self.names)

    def fingerprint(self) -> str:
        """Stable 16-hex-digit hash of everything that changes the vector (part of the model id).

        >>> FeatureSpec().fingerprint() == FeatureSpec().fingerprint() != FeatureSpec(tz="Europe/Oslo").fingerprint()
        True
        """
        canonical = json.dumps(
            {
                "v": 1,
                "names": list(self.names),
                "tz": self.tz,
                "nominal_voltage_v": self.nominal_voltage_v,
                "energy_max_gap_us": self.energy_max_gap_us,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return min(max(x, -_LIMIT), _LIMIT)


def _local_hours(start_us: int, tz: str) -> float:
    """Local wall-clock hour of day (fractional) of an instant."""
    try:
        local = (_EPOCH + timedelta(microseconds=start_us)).astimezone(ZoneInfo(tz))
    except (OverflowError, ValueError):  # outside datetime's range: UTC is all we can say
        return (start_us % _DAY_US) / 3_600_000_000
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def compute_features(window: ClosedWindow, spec: FeatureSpec) -> dict[str, float]:
    """Unscaled features of ``window`` for ``spec.names``, in that order, all finite."""
    power = window.power_w
    n = len(power)
    out: dict[str, float] = {}
    wanted = set(spec.names)
    if wanted & {"power_mean_w", "power_std_w", "power_max_w", "power_min_w"}:
        mean = sum(power) / n if n else 0.0
        # two-pass variance: no catastrophic cancellation at a high constant load
        var = sum((p - mean) * (p - mean) for p in power) / n if n else 0.0
        stats = {
            "power_mean_w": mean,
            "power_std_w": math.sqrt(var) if var >= 0.0 else 0.0,
            "power_max_w": max(power) if n else 0.0,
            "power_min_w": min(power) if n else 0.0,
        }
        out.update({k: v for k, v in stats.items() if k in wanted})
    if "energy_wh" in wanted:
        out["energy_wh"] = window_energy_wh(
            window.ts_us, power, window.start_us, window.end_us, spec.energy_max_gap_us
        )
    means = [
        s / c if c else spec.nominal_voltage_v
        for s, c in zip(window.voltage_sum_v, window.voltage_count, strict=True)
    ]
    present = [m for m, c in zip(means, window.voltage_count, strict=True) if c]
    out["voltage_min_mean_v"] = min(present) if present else spec.nominal_voltage_v
    amps = [abs(a) for a in window.current_max_a if a is not None and not math.isnan(a)]
    mean_amps = sum(amps) / len(amps) if amps else 0.0
    out["current_imbalance"] = max(amps) / mean_amps if len(amps) >= 2 and mean_amps > 0 else 1.0
    out["n_readings"] = float(n)
    for i in range(3):
        out[f"voltage_l{i + 1}_mean_v"] = means[i]
        current = window.current_max_a[i]
        out[f"current_l{i + 1}_max_a"] = 0.0 if current is None else current
    if spec.time_of_day:
        angle = 2 * math.pi * _local_hours(window.start_us, spec.tz) / 24
        out["tod_sin"], out["tod_cos"] = math.sin(angle), math.cos(angle)
    return {name: _finite(out[name]) for name in spec.names}


def vector(features: Mapping[str, float], spec: FeatureSpec) -> list[float]:
    """The detector's input: ``features`` in ``spec.names`` order (ValueError if one is missing)."""
    missing = [n for n in spec.names if n not in features]
    if missing:
        raise ValueError(f"features {missing} missing for spec {spec.fingerprint()}")
    return [float(features[n]) for n in spec.names]
