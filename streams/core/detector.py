"""The detector contract: a small, seeded, River-like online anomaly scorer.

Conventions (shared by every engine, checked by ``tests/checks``):

* ``score_one(x)`` is higher for more anomalous points; it does **not** learn ``x``. The
  caller scores first and then calls ``learn_one(x)``, so a point never vouches for itself.
* While warming up (fewer than ``output_after`` complete shingles learned) ``score_one``
  returns ``0.0`` and ``attribution_one`` zeros. Score ranges are per engine: AWS RCF scores
  sit near 1 for ordinary points, rrcf's collusive displacement has no fixed scale, so
  thresholds must be fitted per engine (see :mod:`streams.core.threshold`).
* ``x`` is one window's feature vector of exactly ``dimensions`` finite floats; shingling (the
  last ``shingle_size`` vectors side by side) happens inside the detector.
* ``attribution_one(x)`` has one entry per input dimension: its share of the score, summed over
  the shingle positions, so the entries add up to the score.
* All randomness comes from ``seed``; ``to_bytes`` captures everything that affects the next
  score, and ``from_bytes(to_bytes())`` continues with identical scores. No I/O anywhere.

Two engines implement it: :class:`streams.core.rcf_aws.AwsRcf` (krcf, the production one)
and :class:`streams.core.rcf_reference.ReferenceRcf` (rrcf, pure Python, ~200x slower, kept
as an independent reference). Both take the same constructor parameters.

>>> fold_shingle([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dimensions=2, shingle_size=3)
[9.0, 12.0]
>>> check_point([1, 2.5], dimensions=2)
[1.0, 2.5]
>>> check_point([1.0], dimensions=2)
Traceback (most recent call last):
...
streams.core.detector.FeatureMismatchError: expected a vector of 2 features, got 1
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final, Protocol, Self, runtime_checkable

# Defaults sized for one update per 60 s window per meter within ~300 KB of state per meter
# (docs/tuning.md has the measurements behind each number).
DEFAULT_NUM_TREES: Final = 30
DEFAULT_SAMPLE_SIZE: Final = 128
DEFAULT_SHINGLE_SIZE: Final = 2
DEFAULT_OUTPUT_AFTER: Final = 128  # one full sample before the forest's scores mean much
DEFAULT_TIME_DECAY: Final = 1.0 / 4320  # sample memory ~3 days of 60 s windows


class FeatureMismatchError(ValueError):
    """A feature vector has the wrong length or non-finite values: the feature set given to the
    model differs from the one it was built for. Fix the caller, or reset the model."""


@runtime_checkable
class Detector(Protocol):
    """What the model needs of an online anomaly detector (see the module docstring)."""

    @property
    def dimensions(self) -> int:
        """Input features per point (before shingling)."""
        ...

    @property
    def shingle_size(self) -> int:
        """Consecutive points scored together."""
        ...

    @property
    def n_seen(self) -> int:
        """Points learned so far."""
        ...

    @property
    def warming_up(self) -> bool:
        """True while ``score_one`` returns 0.0."""
        ...

    def learn_one(self, x: Sequence[float]) -> None: ...

    def score_one(self, x: Sequence[float]) -> float: ...

    def attribution_one(self, x: Sequence[float]) -> list[float]: ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self: ...


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """The constructor parameters both engines share, validated; stored in their snapshots.

    ``time_decay`` is the AWS sampler's forgetting rate per point (memory ~ ``1/time_decay``
    points); the rrcf reference keeps the last ``sample_size`` points instead and ignores it.
    """

    dimensions: int
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    num_trees: int = DEFAULT_NUM_TREES
    sample_size: int = DEFAULT_SAMPLE_SIZE
    output_after: int = DEFAULT_OUTPUT_AFTER
    time_decay: float = DEFAULT_TIME_DECAY
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dimensions", "shingle_size", "num_trees", "sample_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.output_after, int) and self.output_after >= 1):
            raise ValueError(f"output_after must be an int >= 1, got {self.output_after!r}")
        if not (math.isfinite(self.time_decay) and 0.0 <= self.time_decay < 1.0):
            raise ValueError(f"time_decay must be in [0, 1), got {self.time_decay!r}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise ValueError(f"seed must be an int in [0, 2**63), got {self.seed!r}")

    @property
    def warm_up_points(self) -> int:
        """Points to learn before scoring: fill one shingle, then ``output_after`` shingles."""
        return self.output_after + self.shingle_size - 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DetectorParams:
        return cls(**json.loads(data))


def check_point(x: Sequence[float], dimensions: int) -> list[float]:
    """``x`` as a new list of floats; raises :class:`FeatureMismatchError` if it is not
    ``dimensions`` finite numbers (the engines would otherwise fail obscurely or, for NaN,
    silently poison the forest)."""
    if len(x) != dimensions:
        raise FeatureMismatchError(f"expected a vector of {dimensions} features, got {len(x)}")
    point = [float(v) for v in x]
    if not all(math.isfinite(v) for v in point):
        raise FeatureMismatchError(f"feature vector has non-finite values: {point}")
    return point


def fold_shingle(values: Sequence[float], dimensions: int, shingle_size: int) -> list[float]:
    """Sum per-shingled-coordinate values over the shingle positions.

    The shingled layout is oldest point first: coordinate ``k * dimensions + j`` is feature
    ``j`` of the point ``shingle_size - 1 - k`` steps back.
    """
    if len(values) != dimensions * shingle_size:
        raise ValueError(f"expected {dimensions * shingle_size} values, got {len(values)}")
    return [
        math.fsum(values[k * dimensions + j] for k in range(shingle_size))
        for j in range(dimensions)
    ]


class ForestBase:
    """What both forest engines expose the same way: their parameters and warm-up counter."""

    params: DetectorParams
    _n_seen: int

    @property
    def dimensions(self) -> int:
        return self.params.dimensions

    @property
    def shingle_size(self) -> int:
        return self.params.shingle_size

    @property
    def n_seen(self) -> int:
        return self._n_seen

    @property
    def warming_up(self) -> bool:
        return self._n_seen < self.params.warm_up_points
