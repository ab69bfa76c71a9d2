"""AdaptiveThreshold's statistics and StaticThreshold (generic checks are in tests/checks)."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.threshold import AdaptiveThreshold, StaticThreshold, threshold_from_bytes

finite_scores = st.lists(st.floats(0.0, 10.0), min_size=1, max_size=60)


@given(finite_scores)
def test_starts_as_the_plain_mean_and_variance(scores: list[float]) -> None:
    """Until 1/n falls below the forgetting rate, every score weighs the same."""
    t = AdaptiveThreshold(half_life=1_000, warm_up=1, protect=False)
    for s in scores:
        t.learn_one(s)
    assert t.mean == pytest.approx(statistics.fmean(scores), abs=1e-9)
    assert t.var == pytest.approx(statistics.pvariance(scores), abs=1e-9)


def test_forgets_with_the_half_life() -> None:
    t = AdaptiveThreshold(half_life=10, warm_up=1, protect=False)
    for _ in range(1_000):
        t.learn_one(1.0)
    for _ in range(10):
        t.learn_one(3.0)
    assert t.mean == pytest.approx(2.0, rel=1e-6)  # half the weight is on the new level


def test_cut_is_mean_plus_k_std_but_never_below_the_floor() -> None:
    rng = random.Random(1)
    t = AdaptiveThreshold(k=4.0, half_life=10_000, warm_up=10, protect=False, floor=0.0)
    for _ in range(500):
        t.learn_one(rng.gauss(1.0, 0.2))
    assert t.value == pytest.approx(t.mean + 4.0 * math.sqrt(t.var))
    assert t.value == pytest.approx(1.8, abs=0.1)
    floored = threshold_from_bytes(t.to_bytes())
    assert isinstance(floored, AdaptiveThreshold)
    floored.floor = 5.0
    assert floored.value == 5.0


def test_protect_counts_what_it_keeps_out() -> None:
    t = AdaptiveThreshold(warm_up=3, floor=2.0)
    for s in (1.0, 1.0, 1.0, 9.0, 1.0):
        t.learn_one(s)
    assert (t.n, t.protected, t.mean) == (4, 1, 1.0)


def test_unprotected_learns_anomalies_too() -> None:
    t = AdaptiveThreshold(warm_up=3, floor=2.0, protect=False)
    for s in (1.0, 1.0, 1.0, 9.0):
        t.learn_one(s)
    assert (t.n, t.protected) == (4, 0)
    assert t.mean == 3.0


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": math.inf}, {"half_life": 0.5}, {"warm_up": 0}, {"floor": math.nan}],
)
def test_parameters_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AdaptiveThreshold(**kwargs)  # type: ignore[arg-type]


def test_static_threshold() -> None:
    t = StaticThreshold(2.5)
    t.learn_one(100.0)
    assert (t.value, t.classify(2.5), t.classify(2.51)) == (2.5, False, True)
    with pytest.raises(ValueError, match="finite"):
        StaticThreshold(math.nan)


def test_from_bytes_checks_the_kind() -> None:
    with pytest.raises(ValueError, match="not an AdaptiveThreshold"):
        AdaptiveThreshold.from_bytes(StaticThreshold(1.0).to_bytes())
    with pytest.raises(ValueError, match="not a StaticThreshold"):
        StaticThreshold.from_bytes(AdaptiveThreshold().to_bytes())
    with pytest.raises(ValueError, match="not a threshold snapshot"):
        threshold_from_bytes(b"{}")
    with pytest.raises(ValueError, match="unknown threshold kind"):
        threshold_from_bytes(b'{"kind": "magic", "params": {}, "state": []}')
