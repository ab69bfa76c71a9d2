"""From the worker settings to the pure core's configuration objects (one place for the mapping)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from meterstream.settings import WorkerSettings
from schemas.codec import AvroCodec
from streams.core.features import DEFAULT_FEATURES, FeatureSpec
from streams.core.model import ModelConfig, Scaler
from streams.core.scaling import OnlineScaler
from streams.core.types import WindowConfig
from streams.metrics import WorkerMetrics
from streams.processor import WorkerCore

_US = 1_000_000


def window_config(worker: WorkerSettings) -> WindowConfig:
    return WindowConfig(
        size_us=int(worker.window * _US),
        lateness_us=int(worker.lateness * _US),
        idle_timeout_us=int(worker.idle_timeout * _US),
        energy_max_gap_us=int(worker.energy_max_gap * _US),
    )


def feature_spec(worker: WorkerSettings) -> FeatureSpec:
    names = tuple(n.strip() for n in worker.features.split(",") if n.strip()) or DEFAULT_FEATURES
    return FeatureSpec(
        features=names,
        time_of_day=worker.time_of_day,
        tz=worker.tz,
        energy_max_gap_us=int(worker.energy_max_gap * _US),
    )


def model_config(worker: WorkerSettings) -> ModelConfig:
    spec = feature_spec(worker)
    windows = window_config(worker)
    return ModelConfig(
        feature_names=spec.names,
        engine=worker.engine,
        num_trees=worker.trees,
        sample_size=worker.sample_size,
        shingle_size=worker.shingle,
        output_after=worker.warmup,
        time_decay=worker.time_decay,
        seed=worker.seed,
        threshold=worker.threshold,
        threshold_k=worker.threshold_k,
        threshold_warm_up=worker.threshold_warmup,
        threshold_half_life=worker.threshold_half_life,
        threshold_floor=worker.threshold_floor,
        threshold_value=worker.threshold_value if worker.threshold == "static" else None,
        # The window length shapes every feature, so it is part of the model's identity too.
        features_fingerprint=f"{spec.fingerprint()}-w{windows.size_us}-l{windows.lateness_us}",
    )


def scaler_factory(worker: WorkerSettings) -> Callable[[], Scaler]:
    spec = feature_spec(worker)
    return functools.partial(OnlineScaler, len(spec.names), std_floor=spec.std_floors())


def worker_core(
    worker: WorkerSettings,
    *,
    partitions: int,
    readings: AvroCodec,
    scores: AvroCodec,
    metrics: WorkerMetrics,
) -> WorkerCore:
    """The worker's core (no Faust, no Kafka) configured from the settings."""
    return WorkerCore(
        app_id=worker.app_id,
        partitions=partitions,
        windows=window_config(worker),
        features=feature_spec(worker),
        model=model_config(worker),
        scaler=scaler_factory(worker),
        snapshot_every=worker.snapshot_every,
        outbox_size=worker.outbox,
        model_cache=worker.model_cache,
        readings=readings,
        scores=scores,
        metrics=metrics,
    )
