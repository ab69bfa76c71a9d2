"""MeterModel and ModelConfig: identity, processing order, snapshots, the memory budget."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.simulator import HouseholdSimulator
from streams.core.detector import FeatureMismatchError
from streams.core.features import FeatureSpec, compute_features, vector
from streams.core.model import (
    MeterModel,
    ModelConfig,
    ModelMismatchError,
    peek_fingerprint,
    top_feature,
)
from streams.core.rcf_aws import AwsRcf
from streams.core.scaling import OnlineScaler
from streams.core.threshold import AdaptiveThreshold
from streams.core.types import ReadingPoint, ScoreResult, WindowConfig
from streams.core.windowing import MeterWindows

NAMES = ("power", "voltage")
SMALL: dict[str, Any] = {"num_trees": 8, "sample_size": 16, "shingle_size": 2, "output_after": 4}


def small(**overrides: Any) -> ModelConfig:
    return ModelConfig(feature_names=NAMES, threshold_warm_up=5, **{**SMALL, **overrides})


def stream(n: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(1.0, 0.1), rng.gauss(0.0, 0.1)] for _ in range(n)]


def test_fingerprint_is_stable_across_processes() -> None:
    code = (
        "from streams.core.model import ModelConfig;"
        "print(ModelConfig(feature_names=('a', 'b')).fingerprint())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {ModelConfig(feature_names=("a", "b")).fingerprint()}


def test_every_field_is_part_of_the_fingerprint() -> None:
    base = ModelConfig(feature_names=NAMES, threshold_value=3.0)
    changes: dict[str, Any] = {
        "feature_names": ("voltage", "power"),
        "engine": "rrcf",
        "num_trees": 31,
        "sample_size": 64,
        "shingle_size": 3,
        "output_after": 100,
        "time_decay": 0.001,
        "seed": 1,
        "threshold": "static",
        "threshold_k": 3.0,
        "threshold_half_life": 100.0,
        "threshold_warm_up": 10,
        "threshold_protect": False,
        "threshold_floor": 2.0,
        "threshold_value": 4.0,
        "features_fingerprint": "abc",
    }
    assert set(changes) == {f.name for f in dataclasses.fields(ModelConfig)}
    seen = {base.fingerprint()}
    for name, value in changes.items():
        seen.add(dataclasses.replace(base, **{name: value}).fingerprint())
    assert len(seen) == len(changes) + 1


def test_equal_settings_give_equal_fingerprints() -> None:
    ints = ModelConfig(feature_names=("a",), threshold_k=4, threshold_floor=2, time_decay=0)
    floats = ModelConfig(feature_names=("a",), threshold_k=4.0, threshold_floor=2.0, time_decay=0.0)
    assert ints == floats
    assert ints.fingerprint() == floats.fingerprint()


def test_model_id() -> None:
    config = ModelConfig(feature_names=NAMES)
    assert (
        config.model_id("meterstream-worker") == f"meterstream-worker-{config.fingerprint()[:12]}"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"feature_names": ()}, "feature_names"),
        ({"feature_names": ("a", "a")}, "feature_names"),
        ({"engine": "sklearn"}, "engine"),
        ({"threshold": "static"}, "threshold_value"),
        ({"threshold": "quantile"}, "threshold"),
        ({"num_trees": 0}, "num_trees"),
        ({"threshold_k": -1.0}, "k must be"),
    ],
)
def test_config_is_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**{"feature_names": NAMES, **kwargs})  # type: ignore[arg-type]


def test_scores_before_learning_and_decides_after_warm_up() -> None:
    config = small()
    model, twin = MeterModel(config), AwsRcf(2, seed=0, **SMALL)
    warm = SMALL["output_after"] + SMALL["shingle_size"] - 1
    for i, x in enumerate(stream(40)):
        result = model.process(x, NAMES)
        assert result.score == twin.score_one(x)  # the twin has not seen x yet either
        twin.learn_one(x)
        if i < warm:
            assert model.threshold.value is None
            assert result.threshold is None
            assert model.threshold.n == 0  # warm-up zeros never reach the threshold
        assert result.warming_up == (i < warm + config.threshold_warm_up)
    assert model.windows_seen == 40


def test_only_flagged_windows_are_attributed() -> None:
    model = MeterModel(small(threshold="static", threshold_value=1.5))
    results = [model.process(x, NAMES) for x in stream(60)]
    spike = model.process([9.0, 0.0], NAMES)
    assert all(r.attribution == {} for r in results if not r.is_anomaly)
    assert spike.is_anomaly
    assert top_feature(spike) == "power"
    assert list(spike.attribution.values()) == sorted(spike.attribution.values(), reverse=True)
    assert model.anomalies == sum(r.is_anomaly for r in [*results, spike])
    assert top_feature(ScoreResult(0.0, None, False)) is None


def test_protected_threshold_ignores_flagged_scores() -> None:
    model = MeterModel(small(threshold_floor=1.0))
    for x in stream(60):
        model.process(x, NAMES)
    t = model.threshold
    assert isinstance(t, AdaptiveThreshold)
    before = (t.value, t.n, t.mean, t.var)
    assert model.process([50.0, 50.0], NAMES).is_anomaly
    assert (t.value, t.n, t.mean, t.var, t.protected) == (*before, 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=40),
    cut=st.integers(0, 40),
    engine=st.sampled_from(["aws", "rrcf"]),
    scaled=st.booleans(),
)
def test_restore_gives_identical_next_outputs(
    points: list[tuple[float, float]], cut: int, engine: str, scaled: bool
) -> None:
    config = small(engine=engine, threshold_floor=0.0)
    factory = (lambda: OnlineScaler(2, warmup=2, std_floor=0.1)) if scaled else None
    model = MeterModel(config, factory)
    cut = min(cut, len(points))
    for x in points[:cut]:
        model.process(x, NAMES)
    clone = MeterModel.restore(model.snapshot(), config, factory)
    for x in points[cut:]:
        assert clone.process(x, NAMES) == model.process(x, NAMES)
    assert clone.snapshot() == model.snapshot()


def test_restore_refuses_a_scaler_mismatch_and_other_formats() -> None:
    config = small()
    blob = MeterModel(config).snapshot()
    with pytest.raises(ModelMismatchError, match="scaler"):
        MeterModel.restore(blob, config, lambda: OnlineScaler(2))
    future = blob[:4] + bytes([99]) + blob[5:]
    with pytest.raises(ModelMismatchError, match="format 99"):
        MeterModel.restore(future, config)
    assert peek_fingerprint(blob) == config.fingerprint()


def test_feature_names_must_match() -> None:
    with pytest.raises(FeatureMismatchError, match="expects features"):
        MeterModel(small()).process([1.0, 2.0], ["voltage", "power"])


def test_default_model_fits_the_memory_budget() -> None:
    """The default model's snapshot stays under 300 KB at steady state: realistic vectors
    (simulated household, default features, scaler), 12,000 windows (8+ days). krcf's point
    store grows for days as the trees' samples spread out, so 1,000 windows would flatter it
    (~90 KB then, ~230 KB at steady state: docs/tuning.md)."""
    spec = FeatureSpec(tz="Europe/Oslo")
    sim = HouseholdSimulator(1, start_us=1_767_222_000_000_000, interval_s=10.0, seed=5)
    windows = MeterWindows(WindowConfig())
    config = ModelConfig(feature_names=spec.names, features_fingerprint=spec.fingerprint())
    model = MeterModel(config, lambda: OnlineScaler(len(spec.names), std_floor=spec.std_floors()))
    for batch in sim.batches(end_us=sim.start_us + 12_000 * 60_000_000):
        for r in batch:
            point = ReadingPoint(
                r["ts"],
                r["power_w"],
                r["ts"] // 1000,
                voltage_v=(r["voltage_l1_v"], r["voltage_l2_v"], r["voltage_l3_v"]),
                current_a=(r["current_l1_a"], r["current_l2_a"], r["current_l3_a"]),
            )
            for window in windows.add(point).closed:
                model.process(vector(compute_features(window, spec), spec), spec.names)
    assert model.windows_seen > 11_900
    size = len(model.snapshot())
    assert 150_000 < size < 300_000, f"default model snapshot is {size} bytes"
