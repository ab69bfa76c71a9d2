"""OnlineScaler: Welford statistics, floors and clipping, exact snapshots, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.features import FeatureSpec, compute_features, vector
from streams.core.scaling import OnlineScaler, ScalerStateError
from streams.core.types import ClosedWindow

values = st.floats(-1e6, 1e6, allow_nan=False)


def vectors(dim: int, min_size: int = 0) -> st.SearchStrategy[list[list[float]]]:
    return st.lists(st.lists(values, min_size=dim, max_size=dim), min_size=min_size, max_size=60)


@given(data=vectors(3, min_size=2))
def test_running_statistics_match_numpy(data: list[list[float]]) -> None:
    s = OnlineScaler(3)
    for x in data:
        s.learn_one(x)
    a = np.array(data)
    assert s.count == len(data)
    assert s.mean == pytest.approx(a.mean(axis=0), rel=1e-9, abs=1e-6)
    assert s.std == pytest.approx(a.std(axis=0, ddof=1), rel=1e-6, abs=1e-6)


def test_floor_keeps_constant_features_from_exploding_and_clip_bounds_outputs() -> None:
    assert not OnlineScaler(2, warmup=2).ready
    s = OnlineScaler(2, warmup=2, std_floor=[0.5, 0.05], clip=10.0)
    for _ in range(50):
        s.learn_one([230.0, 1.0])
    assert s.ready
    assert s.std == (0.0, 0.0)
    assert s.transform([230.0, 1.0]) == [0.0, 0.0]
    assert s.transform([231.0, 1.1]) == pytest.approx([2.0, 2.0])
    assert s.transform([1e9, -1e9]) == [10.0, -10.0]


@given(data=vectors(4), cut=st.integers(0, 60), probe=st.lists(values, min_size=4, max_size=4))
def test_snapshot_at_any_point_gives_identical_futures(
    data: list[list[float]], cut: int, probe: list[float]
) -> None:
    straight = OnlineScaler(4, warmup=5, std_floor=[1.0, 0.5, 0.01, 2.0])
    for x in data[:cut]:
        straight.learn_one(x)
    restored = OnlineScaler.from_bytes(straight.to_bytes())
    assert restored == straight
    assert restored.to_bytes() == straight.to_bytes()
    assert restored.ready == straight.ready
    for x in data[cut:]:
        assert restored.transform(x) == straight.transform(x)
        straight.learn_one(x)
        restored.learn_one(x)
    assert restored.transform(probe) == straight.transform(probe)
    assert restored.to_bytes() == straight.to_bytes()


@given(data=vectors(2))
def test_same_inputs_give_bit_identical_state(data: list[list[float]]) -> None:
    a, b = OnlineScaler(2), OnlineScaler(2)
    for x in data:
        a.learn_one(x)
        b.learn_one(list(x))
    assert a.to_bytes() == b.to_bytes()


def test_scaler_with_feature_floors_on_real_windows() -> None:
    spec = FeatureSpec(tz="Europe/Oslo")
    s = OnlineScaler(len(spec.names), warmup=3, std_floor=spec.std_floors())
    for k in range(10):
        start = 1_767_222_000_000_000 + k * 60_000_000
        w = ClosedWindow(start, start + 60_000_000, (start,), (400.0 + 10 * k,))
        x = vector(compute_features(w, spec), spec)
        z = s.transform(x)
        assert all(math.isfinite(v) and abs(v) <= 10.0 for v in z)
        s.learn_one(x)
    assert s.ready


def test_bad_input_and_bad_state_are_refused() -> None:
    s = OnlineScaler(2)
    with pytest.raises(ValueError, match="dimensions"):
        s.learn_one([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        s.transform([1.0, math.nan])
    with pytest.raises(ValueError, match="std floors"):
        OnlineScaler(2, std_floor=[1.0])
    with pytest.raises(ValueError, match="positive"):
        OnlineScaler(2, std_floor=0.0)
    data = s.to_bytes()
    with pytest.raises(ScalerStateError, match="version"):
        OnlineScaler.from_bytes(b"\x07" + data[1:])
    with pytest.raises(ScalerStateError):
        OnlineScaler.from_bytes(data[:-1])
    with pytest.raises(ScalerStateError):
        OnlineScaler.from_bytes(b"")
    assert repr(s) == "OnlineScaler(dim=2, count=0, ready=False)"
