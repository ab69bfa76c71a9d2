"""Checks for thresholds (:mod:`streams.core.threshold`)."""

from __future__ import annotations

import math
import random

import pytest

from streams.core.threshold import AdaptiveThreshold, Threshold, threshold_from_bytes
from tests.checks.common import roc_auc
from tests.checks.registry import Estimator


def _scores(n: int, seed: int, *, spikes: bool = False) -> tuple[list[float], list[bool]]:
    """AWS-like scores: ~1 with some noise; spikes (if asked) at 3.0-4.0 after the first 40."""
    rng = random.Random(seed)
    out, labels = [], []
    for i in range(n):
        spike = spikes and i >= 40 and rng.random() < 0.1
        out.append(rng.uniform(3.0, 4.0) if spike else max(0.0, rng.gauss(1.0, 0.15)))
        labels.append(spike)
    return out, labels


def _feed(t: Threshold, scores: list[float]) -> list[bool]:
    decisions = []
    for s in scores:
        decisions.append(t.classify(s))
        t.learn_one(s)
    return decisions


def check_is_threshold(est: Estimator) -> None:
    t = est.make(0)
    assert isinstance(t, Threshold)
    assert type(t).__doc__
    assert isinstance(t.protect, bool)


def check_deterministic(est: Estimator) -> None:
    scores, _ = _scores(200, seed=1, spikes=True)
    a, b = est.make(1), est.make(1)
    assert _feed(a, scores) == _feed(b, scores)
    assert a.value == b.value
    assert a.to_bytes() == b.to_bytes()


def check_snapshot_round_trip(est: Estimator) -> None:
    scores, _ = _scores(200, seed=2, spikes=True)
    t = est.make(2)
    _feed(t, scores[:100])
    clone = threshold_from_bytes(t.to_bytes())
    assert type(clone) is type(t)
    assert clone.value == t.value
    assert _feed(clone, scores[100:]) == _feed(t, scores[100:])
    assert clone.to_bytes() == t.to_bytes()
    assert type(t).from_bytes(t.to_bytes()).to_bytes() == t.to_bytes()


def check_warm_up_decides_nothing(est: Estimator) -> None:
    t = est.make(3)
    if not isinstance(t, AdaptiveThreshold):
        assert t.value is not None  # nothing to warm up
        return
    for _ in range(t.warm_up):
        assert t.value is None
        assert t.classify(100.0) is False
        t.learn_one(1.0)
    assert t.value is not None


def check_rejects_non_finite_scores(est: Estimator) -> None:
    t = est.make(4)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            t.learn_one(bad)
        with pytest.raises(ValueError, match="finite"):
            t.classify(bad)


def check_protect_keeps_anomalies_out(est: Estimator) -> None:
    scores, _ = _scores(100, seed=5)
    t = est.make(5)
    _feed(t, scores)
    before = t.value
    assert before is not None
    assert t.classify(before + 10.0)
    t.learn_one(before + 10.0)
    if t.protect:
        assert t.value == before
    elif isinstance(t, AdaptiveThreshold):
        assert t.value is not None
        assert t.value > before


def check_roc_auc_on_spikes(est: Estimator) -> None:
    scores, labels = _scores(400, seed=6, spikes=True)
    decisions = _feed(est.make(6), scores)
    auc = roc_auc(labels[40:], [float(d) for d in decisions[40:]])
    assert auc > 0.5, f"decisions do not separate spikes: AUC {auc:.3f}"


CHECKS = (
    check_is_threshold,
    check_deterministic,
    check_snapshot_round_trip,
    check_warm_up_decides_nothing,
    check_rejects_non_finite_scores,
    check_protect_keeps_anomalies_out,
    check_roc_auc_on_spikes,
)
