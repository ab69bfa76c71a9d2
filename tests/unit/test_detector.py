"""Engine-specific facts behind the detector contract (the generic checks are in tests/checks)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streams.core.detector import DetectorParams, fold_shingle
from streams.core.rcf_aws import AwsRcf
from streams.core.rcf_reference import ReferenceRcf, _codisp_and_cut

SMALL = {"num_trees": 10, "sample_size": 32, "output_after": 8}


def _points(n: int, dims: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[math.sin(i / 5 + d) + rng.gauss(0, 0.1) for d in range(dims)] for i in range(n)]


def test_aws_scores_the_shingle_ending_in_the_raw_point() -> None:
    """krcf shingles internally: score(x) is the shingle "last s-1 points + x", not learned."""
    det = AwsRcf(2, shingle_size=3, seed=1, **SMALL)
    for x in _points(50, 2):
        det.learn_one(x)
    forest = det._forest
    assert forest.is_internal_shingling_enabled()
    assert forest.dimensions() == 6
    shingled = forest.shingled_point([9.0, 9.0])
    assert shingled[-2:] == [9.0, 9.0]
    assert len(shingled) == 6
    assert forest.entries_seen() == 50 - 2  # krcf counts complete shingles
    assert det.score_one([9.0, 9.0]) == det.score_one([9.0, 9.0])


def test_aws_snapshot_carries_rng_and_shingle() -> None:
    det = AwsRcf(2, shingle_size=3, seed=1, **SMALL)
    points = _points(80, 2)
    for x in points[:40]:
        det.learn_one(x)
    clone = AwsRcf.from_bytes(det.to_bytes())
    for x in points[40:]:
        assert clone.score_one(x) == det.score_one(x)
        clone.learn_one(x)
        det.learn_one(x)


def test_aws_bbox_cache_changes_memory_not_scores() -> None:
    points = _points(120, 3)
    results = []
    for fraction in (0.0, 1.0):
        det = AwsRcf(3, seed=2, bbox_cache_fraction=fraction, **SMALL)
        scores = []
        for x in points:
            scores.append(det.score_one(x))
            det.learn_one(x)
        results.append((scores, len(det.to_bytes())))
    (lean_scores, lean_bytes), (cached_scores, cached_bytes) = results
    assert lean_scores == cached_scores
    assert lean_bytes < cached_bytes


def test_aws_rejects_a_bad_cache_fraction() -> None:
    with pytest.raises(ValueError, match="bbox_cache_fraction"):
        AwsRcf(2, bbox_cache_fraction=1.5)


def test_reference_codisp_matches_rrcf() -> None:
    det = ReferenceRcf(3, shingle_size=1, seed=3, **SMALL)
    for x in _points(60, 3):
        det.learn_one(x)
    for tree in det._trees:
        leaf = tree.insert_point(np.array([0.3, 0.2, 5.0]), index=-1)
        ours, cut = _codisp_and_cut(leaf, tree.root)
        assert ours == pytest.approx(tree.codisp(-1))
        assert cut is not None
        assert 0 <= cut < 3
        tree.forget_point(-1)


def test_reference_keeps_a_fifo_sample() -> None:
    det = ReferenceRcf(1, shingle_size=2, seed=4, **SMALL)
    for x in _points(100, 1):
        det.learn_one(x)
    for tree in det._trees:
        assert sorted(tree.leaves) == list(range(99 - 32, 99))  # the last 32 shingles


def test_reference_snapshot_restores_each_tree_rng() -> None:
    """rrcf's to_dict leaves out the generator; without it later cuts would differ."""
    det = ReferenceRcf(2, shingle_size=2, seed=5, **SMALL)
    points = _points(90, 2)
    for x in points[:45]:
        det.learn_one(x)
    clone = ReferenceRcf.from_bytes(det.to_bytes())
    for ours, theirs in zip(det._trees, clone._trees, strict=True):
        a, b = ours.rng.get_state(), theirs.rng.get_state()
        assert (a[1] == b[1]).all()
        assert a[2:] == b[2:]
    for x in points[45:]:
        clone.learn_one(x)
        det.learn_one(x)
    assert clone.to_bytes() == det.to_bytes()


def test_reference_ignores_time_decay() -> None:
    points = _points(60, 2)
    a = ReferenceRcf(2, time_decay=0.0, seed=6, **SMALL)
    b = ReferenceRcf(2, time_decay=0.5, seed=6, **SMALL)
    for x in points:
        assert a.score_one(x) == b.score_one(x)
        a.learn_one(x)
        b.learn_one(x)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dimensions", 0),
        ("shingle_size", 0),
        ("num_trees", 0),
        ("sample_size", 0),
        ("output_after", 0),
        ("time_decay", -0.1),
        ("time_decay", 1.0),
        ("time_decay", math.nan),
        ("seed", -1),
    ],
)
def test_params_are_validated(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        DetectorParams(**{"dimensions": 2, field: value})  # type: ignore[arg-type]


def test_warm_up_points_fill_a_shingle_then_output_after() -> None:
    assert DetectorParams(2, shingle_size=4, output_after=10).warm_up_points == 13


def test_fold_shingle_needs_the_shingled_length() -> None:
    assert fold_shingle([1.0, 2.0, 3.0, 4.0], dimensions=2, shingle_size=2) == [4.0, 6.0]
    with pytest.raises(ValueError, match="expected 4"):
        fold_shingle([1.0], dimensions=2, shingle_size=2)
