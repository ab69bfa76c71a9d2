"""Checks for :class:`streams.core.detector.Detector` implementations."""

from __future__ import annotations

import copy
import math

import pytest

from streams.core.detector import Detector, FeatureMismatchError
from streams.core.snapshot import SnapshotCorrupt
from tests.checks.common import roc_auc, spiky_stream
from tests.checks.registry import DIMS, WARM_UP_POINTS, Estimator

N = 120  # points per stream: warm-up (17) plus enough to compare


def _run(det: Detector, points: list[list[float]]) -> list[float]:
    """Score before learn, as the model does."""
    scores = []
    for x in points:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return scores


def check_is_detector(est: Estimator) -> None:
    det = est.make(0)
    assert isinstance(det, Detector)
    assert type(det).__doc__, "document Parameters and when it works"
    assert (det.dimensions, det.n_seen, det.warming_up) == (DIMS, 0, True)


def check_input_not_mutated(est: Estimator) -> None:
    det = est.make(1)
    points, _ = spiky_stream(40, DIMS, seed=1, start_spikes=0)
    frozen = copy.deepcopy(points)
    for x in points:
        det.score_one(x)
        det.attribution_one(x)
        det.learn_one(x)
    assert points == frozen
    det.learn_one(tuple(points[0]))  # any sequence works, tuples included


def check_same_seed_same_scores(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=2, start_spikes=60)
    first, again, other = (_run(est.make(s), points) for s in (7, 7, 8))
    assert first == again
    assert first != other, "the seed should matter"


def check_snapshot_round_trip(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=3, start_spikes=40)
    det = est.make(3)
    _run(det, points[:60])
    clone = type(det).from_bytes(det.to_bytes())
    assert clone.n_seen == det.n_seen == 60
    nxt = points[60]
    assert clone.score_one(nxt) == det.score_one(nxt)
    assert clone.attribution_one(nxt) == det.attribution_one(nxt)
    assert _run(clone, points[60:]) == _run(det, points[60:])
    assert clone.to_bytes() == det.to_bytes()


def check_snapshot_during_warm_up(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=4, start_spikes=60)
    det = est.make(4)
    _run(det, points[:1])  # shingle buffer only partly filled
    clone = type(det).from_bytes(det.to_bytes())
    assert _run(clone, points[1:]) == _run(det, points[1:])


def check_restore_rejects_foreign_bytes(est: Estimator) -> None:
    det = est.make(5)
    with pytest.raises(SnapshotCorrupt):
        type(det).from_bytes(b"not a forest")


def check_wrong_dimension_raises(est: Estimator) -> None:
    det = est.make(6)
    points, _ = spiky_stream(WARM_UP_POINTS + 5, DIMS, seed=6, start_spikes=10**9)
    _run(det, points)  # past warm-up: krcf itself would only raise a bare RuntimeError here
    for bad in ([1.0] * (DIMS - 1), [1.0] * (DIMS + 1), [math.nan] * DIMS, [math.inf] * DIMS):
        for method in (det.learn_one, det.score_one, det.attribution_one):
            with pytest.raises(FeatureMismatchError, match="feature"):
                method(bad)
    assert det.n_seen == len(points), "a rejected point must not be learned"


def check_warm_up_returns_zero(est: Estimator) -> None:
    det = est.make(7)
    points, _ = spiky_stream(WARM_UP_POINTS + 3, DIMS, seed=7, start_spikes=10**9)
    for i, x in enumerate(points):
        assert det.warming_up == (i < WARM_UP_POINTS)
        score = det.score_one(x)
        if i < WARM_UP_POINTS:
            assert score == 0.0
            assert det.attribution_one(x) == [0.0] * DIMS
        else:
            assert score > 0.0
        det.learn_one(x)


def check_score_does_not_learn(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=8, start_spikes=60)
    plain, probed = est.make(8), est.make(8)
    for x in points:
        probed.score_one([v + 5.0 for v in x])  # extra scoring and attribution of other points
        probed.attribution_one(x)
        assert probed.score_one(x) == plain.score_one(x)
        plain.learn_one(x)
        probed.learn_one(x)
    assert probed.n_seen == plain.n_seen == N


def check_attribution_adds_up_to_score(est: Estimator) -> None:
    det = est.make(9)
    points, _labels = spiky_stream(N, DIMS, seed=9, start_spikes=60)
    _run(det, points[:60])
    for x in points[60:80]:
        shares = det.attribution_one(x)
        assert len(shares) == DIMS
        assert all(s >= 0.0 for s in shares)
        assert math.fsum(shares) == pytest.approx(det.score_one(x), rel=1e-6, abs=1e-9)
    spike = [v + (8.0 if d == 1 else 0.0) for d, v in enumerate(points[80])]
    shares = det.attribution_one(spike)
    assert shares.index(max(shares)) == 1, f"a spike in dimension 1 should lead: {shares}"


def check_roc_auc_on_spikes(est: Estimator) -> None:
    points, labels = spiky_stream(300, DIMS, seed=10, start_spikes=WARM_UP_POINTS + 30)
    scores = _run(est.make(10), points)
    scored = slice(WARM_UP_POINTS, None)
    auc = roc_auc(labels[scored], scores[scored])
    assert auc > 0.5, f"spikes ranked no better than chance: AUC {auc:.3f}"


CHECKS = (
    check_is_detector,
    check_input_not_mutated,
    check_same_seed_same_scores,
    check_snapshot_round_trip,
    check_snapshot_during_warm_up,
    check_restore_rejects_foreign_bytes,
    check_wrong_dimension_raises,
    check_warm_up_returns_zero,
    check_score_does_not_learn,
    check_attribution_adds_up_to_score,
    check_roc_auc_on_spikes,
)
