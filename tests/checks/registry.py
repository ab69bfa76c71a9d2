"""The estimators under test, each with a small seeded factory (fast enough for rrcf)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from streams.core.model import AWS_SCORE_FLOOR, MeterModel, ModelConfig
from streams.core.rcf_aws import AwsRcf
from streams.core.rcf_reference import ReferenceRcf
from streams.core.scaling import OnlineScaler
from streams.core.threshold import AdaptiveThreshold, StaticThreshold

DIMS = 3
NAMES = ("power", "voltage", "hour")


class Forest(TypedDict):
    shingle_size: int
    num_trees: int
    sample_size: int
    output_after: int


# Small forests: the checks are about the contract, not about detection quality.
FOREST = Forest(shingle_size=2, num_trees=10, sample_size=32, output_after=16)
WARM_UP_POINTS = FOREST["output_after"] + FOREST["shingle_size"] - 1


@dataclass(frozen=True)
class Estimator:
    """One estimator under test: ``make(seed)`` builds a fresh instance."""

    name: str
    kind: Literal["detector", "threshold", "model", "codec"]
    make: Callable[[int], Any]
    restore: Callable[[bytes], Any] | None = None  # for models: MeterModel.restore with config


def _model_config(engine: Literal["aws", "rrcf"], seed: int) -> ModelConfig:
    return ModelConfig(
        feature_names=NAMES,
        engine=engine,
        seed=seed,
        threshold_warm_up=20,
        # rrcf's CoDisp has its own scale: no AWS floor there.
        threshold_floor=0.0 if engine == "rrcf" else AWS_SCORE_FLOOR,
        **FOREST,
    )


def _scaler() -> OnlineScaler:
    return OnlineScaler(DIMS, warmup=5, std_floor=0.1)


def _model(engine: Literal["aws", "rrcf"], scaled: bool) -> Estimator:
    factory = _scaler if scaled else None
    name = f"MeterModel-{engine}" + ("-scaled" if scaled else "")
    return Estimator(
        name,
        "model",
        lambda seed: MeterModel(_model_config(engine, seed), factory),
        lambda data: MeterModel.restore(data, _model_config(engine, 0), factory),
    )


ESTIMATORS: tuple[Estimator, ...] = (
    Estimator("AwsRcf", "detector", lambda seed: AwsRcf(DIMS, seed=seed, **FOREST)),
    Estimator("ReferenceRcf", "detector", lambda seed: ReferenceRcf(DIMS, seed=seed, **FOREST)),
    Estimator(
        "AdaptiveThreshold",
        "threshold",
        lambda seed: AdaptiveThreshold(k=3.0, half_life=50, warm_up=20, floor=0.0),
    ),
    Estimator(
        "AdaptiveThreshold-floor",
        "threshold",
        lambda seed: AdaptiveThreshold(warm_up=20, floor=1.7),
    ),
    Estimator("StaticThreshold", "threshold", lambda seed: StaticThreshold(2.0)),
    _model("aws", scaled=False),
    _model("aws", scaled=True),
    _model("rrcf", scaled=False),
    Estimator("ChunkedSnapshot-1KB", "codec", lambda seed: 1024),
    Estimator("ChunkedSnapshot-7B", "codec", lambda seed: 7),
)
