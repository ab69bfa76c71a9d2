"""One meter's anomaly model: [scaler] -> detector -> threshold, with a versioned snapshot.

Per closed window the worker calls :meth:`MeterModel.process` once with the window's feature
vector. The steps, in this order, and why:

1. **Scale** with the scaler's statistics *before* this window (if a scaler is configured).
2. **Score** against the forest *before* learning the window, so a point never vouches for
   itself. During the detector's warm-up the score is 0.0 and nothing is decided.
3. **Decide** with the threshold as it stood before this score.
4. **Attribute** flagged windows only: per feature, the share of the score summed over the
   shingle positions, largest first (:func:`top_feature` names the first). Normal windows get
   an empty attribution: it would double the per-window cost for a field nobody reads.
5. **Learn.** The detector *always* learns, anomalous or not: its shingle must see every
   window in order (skipping one would splice unrelated windows into one shingle), and a
   lasting change (a new heat pump) must become normal in time. The threshold learns unless
   the window was flagged and the threshold protects (the default). The scaler learns too.

:meth:`MeterModel.snapshot` captures all of it (zlib, with a header holding the format version
and the config fingerprint); :meth:`MeterModel.restore` refuses a snapshot made under another
config with :class:`ModelMismatchError`, never reusing it silently.

>>> config = ModelConfig(feature_names=("power", "hour"), num_trees=10, sample_size=32,
...                      output_after=8, shingle_size=1, threshold_warm_up=20)
>>> model = MeterModel(config)
>>> results = [model.process([float(i % 3), 0.5], config.feature_names) for i in range(60)]
>>> results[0].warming_up, results[-1].warming_up, model.windows_seen
(True, False, 60)
>>> spike = model.process([50.0, 0.5], config.feature_names)
>>> spike.is_anomaly, top_feature(spike)
(True, 'power')
>>> clone = MeterModel.restore(model.snapshot(), config)
>>> clone.process([1.0, 0.5], config.feature_names) == model.process([1.0, 0.5], config.feature_names)
True
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal, Protocol

from streams.core import snapshot
from streams.core.detector import (
    DEFAULT_NUM_TREES,
    DEFAULT_OUTPUT_AFTER,
    DEFAULT_SAMPLE_SIZE,
    DEFAULT_SHINGLE_SIZE,
    DEFAULT_TIME_DECAY,
    Detector,
    DetectorParams,
    FeatureMismatchError,
    check_point,
)
from streams.core.rcf_aws import AwsRcf
from streams.core.rcf_reference import ReferenceRcf
from streams.core.threshold import (
    DEFAULT_HALF_LIFE,
    DEFAULT_K,
    DEFAULT_WARM_UP,
    AdaptiveThreshold,
    StaticThreshold,
    threshold_from_bytes,
)
from streams.core.types import ScoreResult

__all__ = [
    "FeatureMismatchError",
    "MeterModel",
    "ModelConfig",
    "ModelMismatchError",
    "Scaler",
    "peek_fingerprint",
    "top_feature",
]

FORMAT_VERSION: Final = 1
_MAGIC: Final = b"MSMD"
_HEADER: Final = struct.Struct(">4sB64s")  # magic, format version, sha256 hex of the config
_FINGERPRINT_SALT: Final = "meterstream-model/1"  # bump when the same config means new maths
_ZLIB_LEVEL: Final = 6  # level 9 saves <1 % on forests and costs twice the time
AWS_SCORE_FLOOR: Final = 1.9  # lowest adaptive cut, in AWS RCF score units (docs/tuning.md)


class ModelMismatchError(ValueError):
    """A stored model was built under another config (settings, features or format version).
    The worker must not reuse it: start a fresh model, or run `meterstream worker reset`."""


class Scaler(Protocol):
    """What the model needs of a feature scaler (``streams.core.scaling.OnlineScaler`` fits)."""

    def learn_one(self, x: Sequence[float]) -> None: ...

    def transform(self, x: Sequence[float]) -> Sequence[float]: ...

    def to_bytes(self) -> bytes: ...

    def from_bytes(self, data: bytes) -> Scaler: ...


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything that decides a meter model's outputs; its :meth:`fingerprint` names it.

    ``feature_names`` fixes the vector layout. ``features_fingerprint`` is the feature spec's
    own fingerprint (window size, time-of-day encoding, ...), so a feature change also changes
    the model's identity. Threshold fields apply to ``threshold="adaptive"``, except
    ``threshold_value`` (required for ``"static"``). ``threshold_floor`` is in the engine's
    score units: the default suits ``"aws"``; set it (0 disables it) for ``"rrcf"``.
    Defaults, what they cost and how they were chosen: ``docs/tuning.md``.
    """

    feature_names: tuple[str, ...]
    engine: Literal["aws", "rrcf"] = "aws"
    num_trees: int = DEFAULT_NUM_TREES
    sample_size: int = DEFAULT_SAMPLE_SIZE
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    output_after: int = DEFAULT_OUTPUT_AFTER
    time_decay: float = DEFAULT_TIME_DECAY
    seed: int = 0
    threshold: Literal["adaptive", "static"] = "adaptive"
    threshold_k: float = DEFAULT_K
    threshold_half_life: float = DEFAULT_HALF_LIFE
    threshold_warm_up: int = DEFAULT_WARM_UP
    threshold_protect: bool = True
    threshold_floor: float = AWS_SCORE_FLOOR
    threshold_value: float | None = None
    features_fingerprint: str = ""

    def __post_init__(self) -> None:
        names = tuple(self.feature_names)
        object.__setattr__(self, "feature_names", names)
        # Equal settings must hash equally: 4 and 4.0 would differ in the fingerprint's JSON.
        for name in ("time_decay", "threshold_k", "threshold_half_life", "threshold_floor"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.threshold_value is not None:
            object.__setattr__(self, "threshold_value", float(self.threshold_value))
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"feature_names must be distinct strings, got {names!r}")
        if self.engine not in ("aws", "rrcf"):
            raise ValueError(f"engine must be 'aws' or 'rrcf', got {self.engine!r}")
        self.detector_params()  # validates the forest parameters
        self.new_threshold()  # validates the threshold parameters

    def detector_params(self) -> DetectorParams:
        return DetectorParams(
            len(self.feature_names),
            self.shingle_size,
            self.num_trees,
            self.sample_size,
            self.output_after,
            self.time_decay,
            self.seed,
        )

    def new_detector(self) -> Detector:
        p = self.detector_params()
        engine = AwsRcf if self.engine == "aws" else ReferenceRcf
        return engine(
            p.dimensions,
            shingle_size=p.shingle_size,
            num_trees=p.num_trees,
            sample_size=p.sample_size,
            output_after=p.output_after,
            time_decay=p.time_decay,
            seed=p.seed,
        )

    def new_threshold(self) -> AdaptiveThreshold | StaticThreshold:
        if self.threshold == "static":
            if self.threshold_value is None:
                raise ValueError("threshold='static' needs threshold_value")
            return StaticThreshold(self.threshold_value, protect=self.threshold_protect)
        if self.threshold != "adaptive":
            raise ValueError(f"threshold must be 'adaptive' or 'static', got {self.threshold!r}")
        return AdaptiveThreshold(
            k=self.threshold_k,
            half_life=self.threshold_half_life,
            warm_up=self.threshold_warm_up,
            protect=self.threshold_protect,
            floor=self.threshold_floor,
        )

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of every field: stable across runs and hosts."""
        canonical = json.dumps(
            {"salt": _FINGERPRINT_SALT, **asdict(self)}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def model_id(self, app_id: str) -> str:
        """``{app_id}-{fingerprint[:12]}``: tells two workers' (or two configs') scores apart."""
        return f"{app_id}-{self.fingerprint()[:12]}"


def top_feature(result: ScoreResult) -> str | None:
    """The feature contributing most to a flagged window's score (None if not attributed)."""
    return next(iter(result.attribution), None)


def peek_fingerprint(data: bytes) -> str:
    """The config fingerprint in a snapshot's header, without decompressing it."""
    return _read_header(data)


def _read_header(data: bytes) -> str:
    if len(data) < _HEADER.size:
        raise snapshot.SnapshotCorrupt(f"model snapshot of {len(data)} bytes has no header")
    magic, version, fingerprint = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise snapshot.SnapshotCorrupt("not a meterstream model snapshot")
    if version != FORMAT_VERSION:
        raise ModelMismatchError(
            f"model snapshot format {version}, this worker reads {FORMAT_VERSION}"
        )
    return bytes(fingerprint).decode("ascii")


class MeterModel:
    """One meter's scaler, detector, threshold and counters (see the module docstring).

    Parameters
    ----------
    config:
        The model's settings; must be the same at :meth:`restore`.
    scaler_factory:
        Builds a fresh scaler for a new meter; None feeds the vectors to the forest unscaled
        (only sensible when the features are already on comparable scales: RCF cuts are
        drawn in proportion to each dimension's range).
    """

    def __init__(
        self, config: ModelConfig, scaler_factory: Callable[[], Scaler] | None = None
    ) -> None:
        self.config = config
        self.fingerprint = config.fingerprint()
        self.scaler: Scaler | None = scaler_factory() if scaler_factory is not None else None
        self.detector: Detector = config.new_detector()
        self.threshold: AdaptiveThreshold | StaticThreshold = config.new_threshold()
        self.windows_seen = 0
        self.anomalies = 0

    def process(self, vector: Sequence[float], feature_names: Sequence[str]) -> ScoreResult:
        """Score, decide and learn one window's features (``feature_names`` must match)."""
        if tuple(feature_names) != self.config.feature_names:
            raise FeatureMismatchError(
                f"model expects features {list(self.config.feature_names)}, "
                f"got {list(feature_names)}"
            )
        raw = check_point(vector, len(self.config.feature_names))
        x = raw if self.scaler is None else check_point(self.scaler.transform(raw), len(raw))
        detector_warm = self.detector.warming_up
        score = self.detector.score_one(x)
        cut = self.threshold.value
        is_anomaly = not detector_warm and self.threshold.classify(score)
        attribution: dict[str, float] = {}
        if is_anomaly:
            shares = self.detector.attribution_one(x)
            ranked = sorted(
                zip(self.config.feature_names, shares, strict=True), key=lambda item: -item[1]
            )  # stable: ties keep feature order
            attribution = dict(ranked)
            self.anomalies += 1
        self.detector.learn_one(x)
        if self.scaler is not None:
            self.scaler.learn_one(raw)
        if not detector_warm:  # warm-up zeros would drag the threshold's mean down
            self.threshold.learn_one(score)
        self.windows_seen += 1
        return ScoreResult(
            score=score,
            threshold=cut,
            is_anomaly=is_anomaly,
            attribution=attribution,
            warming_up=detector_warm or cut is None,
        )

    def snapshot(self) -> bytes:
        """Header (format version, config fingerprint) + zlib of every component's state."""
        counters = json.dumps({"windows_seen": self.windows_seen, "anomalies": self.anomalies})
        body = snapshot.pack(
            [
                counters.encode(),
                self.detector.to_bytes(),
                self.threshold.to_bytes(),
                self.scaler.to_bytes() if self.scaler is not None else b"",
            ]
        )
        header = _HEADER.pack(_MAGIC, FORMAT_VERSION, self.fingerprint.encode("ascii"))
        return header + zlib.compress(body, _ZLIB_LEVEL)

    @classmethod
    def restore(
        cls,
        data: bytes,
        config: ModelConfig,
        scaler_factory: Callable[[], Scaler] | None = None,
    ) -> MeterModel:
        """The model :meth:`snapshot` saved; :class:`ModelMismatchError` if ``config`` (or the
        presence of a scaler) differs from the one it was saved under."""
        stored = _read_header(data)
        expected = config.fingerprint()
        if stored != expected:
            raise ModelMismatchError(
                f"snapshot was made by model {stored[:12]}, this config is {expected[:12]}"
            )
        try:
            body = zlib.decompress(data[_HEADER.size :])
        except zlib.error as exc:
            raise snapshot.SnapshotCorrupt(f"model snapshot does not decompress: {exc}") from exc
        sections = snapshot.unpack(body)
        if len(sections) != 4:
            raise snapshot.SnapshotCorrupt(f"model snapshot has {len(sections)} sections, not 4")
        counters, detector_bytes, threshold_bytes, scaler_bytes = sections
        if bool(scaler_bytes) != (scaler_factory is not None):
            raise ModelMismatchError(
                "snapshot and caller disagree on whether the model has a scaler"
            )
        model = cls.__new__(cls)
        model.config, model.fingerprint = config, expected
        engine = AwsRcf if config.engine == "aws" else ReferenceRcf
        model.detector = engine.from_bytes(detector_bytes)
        model.threshold = threshold_from_bytes(threshold_bytes)
        model.scaler = (
            scaler_factory().from_bytes(scaler_bytes) if scaler_factory is not None else None
        )
        saved = json.loads(counters)
        model.windows_seen, model.anomalies = int(saved["windows_seen"]), int(saved["anomalies"])
        return model
