"""Turning scores into decisions: thresholds are separate objects, as River's anomaly filters.

A threshold sees one meter's scores in order: ``classify(score)`` decides, then
``learn_one(score)`` updates it (the model calls them in that order, so a score is judged
against the statistics of the scores before it). ``value`` is the current cut (None while
warming up, when ``classify`` is always False); ``to_bytes``/:func:`threshold_from_bytes`
round-trip the full state.

Why mean + k*std with exponential forgetting rather than a streaming quantile: three floats of
state per meter, exact and order-deterministic updates, a half-life that says how fast a
meter's "normal" may move, and ``k`` that reads as "how many spreads above normal". A
quantile estimate at the levels we need (well under 1 false alarm per day of 1,440 windows is
a 0.999+ quantile) needs thousands of scores to settle and is noisy once it also forgets. AWS
RCF scores are normalised (about 1 for ordinary points), so a ``floor`` in score units does
most of the work on steady meters and ``k * std`` lifts the cut on noisy ones. On the
simulator a fixed cut, this form and the same form on log scores all trade recall for false
alarms along one curve: the detector's score separation is the limit, not the threshold's form.
``protect`` keeps the flagged scores out of the statistics, so a burst of anomalies does not
raise the bar for the next one. It cannot lock a meter in alarm: the detector keeps learning,
so a lasting change stops scoring high once the forest has absorbed it.

>>> t = AdaptiveThreshold(k=3.0, half_life=100, warm_up=5, floor=1.1)
>>> for s in [1.0, 1.1, 0.9, 1.0, 1.05, 0.95]:
...     t.learn_one(s)
>>> round(t.value, 3), t.classify(1.15), t.classify(2.0)
(1.194, False, True)
>>> AdaptiveThreshold(warm_up=1, floor=1.5).value is None  # warming up
True
>>> threshold_from_bytes(t.to_bytes()).value == t.value
True
>>> StaticThreshold(2.5).classify(3.0)
True
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, Protocol, runtime_checkable

DEFAULT_K: Final = 4.0
DEFAULT_HALF_LIFE: Final = 2880.0  # scores; two days of 60 s windows
DEFAULT_WARM_UP: Final = 1440  # scores; a day of 60 s windows before the first decision
DEFAULT_FLOOR: Final = 0.0  # the model's config sets an engine-scale floor (docs/tuning.md)


@runtime_checkable
class Threshold(Protocol):
    """What the model needs of a threshold (see the module docstring)."""

    protect: bool

    @property
    def value(self) -> float | None: ...

    def learn_one(self, score: float) -> None: ...

    def classify(self, score: float) -> bool: ...

    def to_bytes(self) -> bytes: ...


def _check_score(score: float) -> float:
    if not math.isfinite(score):
        raise ValueError(f"score must be finite, got {score!r}")
    return float(score)


class AdaptiveThreshold:
    """Per-meter ``max(floor, mean + k * std)`` of recent scores, forgetting with a half-life.

    Parameters
    ----------
    k:
        Spreads above the mean that count as anomalous. Higher: fewer false alarms, later or
        missed detections.
    half_life:
        Scores after which an old score weighs half. Short: follows a meter's changing noise
        level quickly, but also drifts toward a slow anomaly. Long: steadier.
    warm_up:
        Scores to learn before the first decision (``value`` is None until then). The first
        ``1 / (1 - 2**(-1/half_life))`` scores are averaged equally, so the estimate is a plain
        mean and variance until the forgetting takes over.
    protect:
        Keep scores classified anomalous out of the statistics (River's
        ``protect_anomaly_detector`` idea, applied to the threshold only).
    floor:
        The cut never goes below this, in the engine's score units. A steady meter has a tiny
        spread, and ``mean + k * std`` alone would then alarm on wiggles. AWS RCF scores are
        normalised (about 1 for ordinary points), so one floor suits every meter; on the
        simulator it sets the cut for most meters, and ``k * std`` lifts it on noisy ones.

    When it works and when not: follows each meter's score level and noise; it assumes the
    bulk of a meter's scores is normal. A meter that is anomalous for most of its warm-up gets
    a cut that is too high until the half-life washes it out.
    """

    def __init__(
        self,
        *,
        k: float = DEFAULT_K,
        half_life: float = DEFAULT_HALF_LIFE,
        warm_up: int = DEFAULT_WARM_UP,
        protect: bool = True,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        if not (math.isfinite(k) and k > 0):
            raise ValueError(f"k must be > 0, got {k!r}")
        if not (math.isfinite(half_life) and half_life >= 1):
            raise ValueError(f"half_life must be >= 1 score, got {half_life!r}")
        if warm_up < 1:
            raise ValueError(f"warm_up must be >= 1 score, got {warm_up!r}")
        if not math.isfinite(floor):
            raise ValueError(f"floor must be finite, got {floor!r}")
        self.k, self.half_life, self.warm_up = float(k), float(half_life), int(warm_up)
        self.protect, self.floor = bool(protect), float(floor)
        self._alpha = 1.0 - 2.0 ** (-1.0 / self.half_life)
        self.n = 0  # scores learned
        self.protected = 0  # scores kept out because they were classified anomalous
        self.mean = 0.0
        self.var = 0.0

    @property
    def value(self) -> float | None:
        if self.n < self.warm_up:
            return None
        return max(self.floor, self.mean + self.k * math.sqrt(self.var))

    def classify(self, score: float) -> bool:
        score = _check_score(score)
        cut = self.value
        return cut is not None and score > cut

    def learn_one(self, score: float) -> None:
        score = _check_score(score)
        if self.protect and self.classify(score):
            self.protected += 1
            return
        self.n += 1
        # Equal weights (1/n) until they drop below the forgetting rate, then exponential:
        # an unbiased start without a separate warm-up estimator. West's weighted update.
        alpha = max(self._alpha, 1.0 / self.n)
        diff = score - self.mean
        step = alpha * diff
        self.mean += step
        self.var = (1.0 - alpha) * (self.var + diff * step)

    def to_bytes(self) -> bytes:
        return _dump("adaptive", self._params(), [self.n, self.protected, self.mean, self.var])

    @classmethod
    def from_bytes(cls, data: bytes) -> AdaptiveThreshold:
        threshold = threshold_from_bytes(data)
        if not isinstance(threshold, cls):
            raise ValueError(f"not an AdaptiveThreshold snapshot: {threshold!r}")
        return threshold

    def _params(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "half_life": self.half_life,
            "warm_up": self.warm_up,
            "protect": self.protect,
            "floor": self.floor,
        }

    def __repr__(self) -> str:
        return f"AdaptiveThreshold({self._params()}, n={self.n}, value={self.value})"


class StaticThreshold:
    """A fixed cut: ``score > value`` is anomalous. Nothing to learn, no warm-up.

    Use it when an operator has chosen a cut for one engine's score scale (AWS RCF: normal
    points score ~1, values around 2.5-3 are a common starting point), or for tests.
    """

    def __init__(self, value: float, *, protect: bool = False) -> None:
        self._value = _check_score(value)
        self.protect = bool(protect)  # nothing to protect; kept for the common interface

    @property
    def value(self) -> float:
        return self._value

    def classify(self, score: float) -> bool:
        return _check_score(score) > self._value

    def learn_one(self, score: float) -> None:
        _check_score(score)

    def to_bytes(self) -> bytes:
        return _dump("static", {"value": self._value, "protect": self.protect}, [])

    @classmethod
    def from_bytes(cls, data: bytes) -> StaticThreshold:
        threshold = threshold_from_bytes(data)
        if not isinstance(threshold, cls):
            raise ValueError(f"not a StaticThreshold snapshot: {threshold!r}")
        return threshold

    def __repr__(self) -> str:
        return f"StaticThreshold({self._value!r})"


def _dump(kind: str, params: dict[str, Any], state: list[float]) -> bytes:
    # JSON writes floats with repr(): the state round-trips exactly.
    return json.dumps({"kind": kind, "params": params, "state": state}, sort_keys=True).encode()


def threshold_from_bytes(data: bytes) -> AdaptiveThreshold | StaticThreshold:
    """The threshold :meth:`to_bytes` saved (either kind)."""
    try:
        obj = json.loads(data)
        kind, params, state = obj["kind"], obj["params"], obj["state"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a threshold snapshot: {exc}") from exc
    if kind == "static":
        return StaticThreshold(params["value"], protect=params["protect"])
    if kind != "adaptive":
        raise ValueError(f"unknown threshold kind {kind!r}")
    threshold = AdaptiveThreshold(**params)
    threshold.n, threshold.protected = int(state[0]), int(state[1])
    threshold.mean, threshold.var = float(state[2]), float(state[3])
    return threshold
