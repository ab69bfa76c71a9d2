"""Checks for :class:`streams.core.model.MeterModel` (every engine, with and without a scaler)."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest

from streams.core.detector import FeatureMismatchError
from streams.core.model import MeterModel, ModelMismatchError, peek_fingerprint
from streams.core.snapshot import SnapshotCorrupt
from streams.core.types import ScoreResult
from tests.checks.common import roc_auc, spiky_stream
from tests.checks.registry import DIMS, NAMES, WARM_UP_POINTS, Estimator

N = 120


def _run(model: MeterModel, points: list[list[float]]) -> list[ScoreResult]:
    return [model.process(x, NAMES) for x in points]


def check_input_not_mutated(est: Estimator) -> None:
    points, _ = spiky_stream(60, DIMS, seed=1, start_spikes=30)
    names = list(NAMES)
    frozen = copy.deepcopy(points)
    model = est.make(1)
    for x in points:
        model.process(x, names)
    assert points == frozen
    assert names == list(NAMES)


def check_same_seed_same_outputs(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=2, start_spikes=60)
    first, again, other = (_run(est.make(s), points) for s in (7, 7, 8))
    assert first == again
    assert [r.score for r in first] != [r.score for r in other]


def check_snapshot_round_trip(est: Estimator) -> None:
    points, _ = spiky_stream(N, DIMS, seed=3, start_spikes=40)
    model = est.make(0)  # the registry restores under the seed-0 config
    _run(model, points[:70])
    blob = model.snapshot()
    assert peek_fingerprint(blob) == model.config.fingerprint()
    assert est.restore is not None
    clone = est.restore(blob)
    assert clone.windows_seen == model.windows_seen == 70
    assert _run(clone, points[70:]) == _run(model, points[70:])
    assert clone.snapshot() == model.snapshot()


def check_restore_refuses_other_config(est: Estimator) -> None:
    model = est.make(0)
    _run(model, spiky_stream(20, DIMS, seed=4, start_spikes=10)[0])
    blob = model.snapshot()
    changed = dataclasses.replace(model.config, num_trees=model.config.num_trees + 1)
    with pytest.raises(ModelMismatchError, match="snapshot was made by model"):
        MeterModel.restore(blob, changed)
    renamed = dataclasses.replace(model.config, feature_names=("a", "b", "c"))
    with pytest.raises(ModelMismatchError):
        MeterModel.restore(blob, renamed)


def check_restore_refuses_corrupt_bytes(est: Estimator) -> None:
    model = est.make(0)
    _run(model, spiky_stream(20, DIMS, seed=5, start_spikes=10)[0])
    blob = model.snapshot()
    assert est.restore is not None
    for bad in (blob[:10], blob[:-5], blob[:-40] + bytes(40), b"XXXX" + blob[4:]):
        with pytest.raises(SnapshotCorrupt):
            est.restore(bad)


def check_wrong_features_raise(est: Estimator) -> None:
    model = est.make(6)
    _run(model, spiky_stream(WARM_UP_POINTS + 2, DIMS, seed=6, start_spikes=10**9)[0])
    seen = model.windows_seen
    with pytest.raises(FeatureMismatchError, match="expects features"):
        model.process([1.0] * DIMS, ("power", "hour", "voltage"))  # same names, other order
    with pytest.raises(FeatureMismatchError, match="expects features"):
        model.process([1.0] * (DIMS + 1), (*NAMES, "extra"))
    for bad in ([1.0] * (DIMS - 1), [math.nan] * DIMS):
        with pytest.raises(FeatureMismatchError):
            model.process(bad, NAMES)
    assert model.windows_seen == seen, "a rejected window must not count"


def check_warm_up_returns_zero(est: Estimator) -> None:
    points, _ = spiky_stream(WARM_UP_POINTS + 5, DIMS, seed=7, start_spikes=10**9)
    results = _run(est.make(7), points)
    for r in results[:WARM_UP_POINTS]:
        assert (r.score, r.is_anomaly, r.warming_up, r.attribution) == (0.0, False, True, {})
    assert all(r.score > 0 for r in results[WARM_UP_POINTS:])


def check_flagged_windows_are_attributed(est: Estimator) -> None:
    points, _ = spiky_stream(200, DIMS, seed=8, start_spikes=10**9)
    model = est.make(8)
    _run(model, points)
    spike = [v + (12.0 if d == 0 else 0.0) for d, v in enumerate(points[0])]
    result = model.process(spike, NAMES)
    assert result.is_anomaly, result
    assert not result.warming_up, result
    assert next(iter(result.attribution)) == "power", result.attribution
    assert set(result.attribution) == set(NAMES)
    assert math.fsum(result.attribution.values()) == pytest.approx(result.score, rel=1e-6)


def check_roc_auc_on_spikes(est: Estimator) -> None:
    points, labels = spiky_stream(300, DIMS, seed=9, start_spikes=WARM_UP_POINTS + 30)
    results = _run(est.make(9), points)
    scored = slice(WARM_UP_POINTS, None)
    auc = roc_auc(labels[scored], [r.score for r in results[scored]])
    assert auc > 0.5, f"AUC {auc:.3f}"


CHECKS = (
    check_input_not_mutated,
    check_same_seed_same_outputs,
    check_snapshot_round_trip,
    check_restore_refuses_other_config,
    check_restore_refuses_corrupt_bytes,
    check_wrong_features_raise,
    check_warm_up_returns_zero,
    check_flagged_windows_are_attributed,
    check_roc_auc_on_spikes,
)
