"""AWS Random Cut Forest (the Rust implementation, through krcf) behind the Detector contract.

What krcf does for us, as probed on krcf 0.4.0:

* **Shingling is internal.** ``dimensions`` is the raw point size; the forest keeps the last
  ``shingle_size - 1`` points and ``score``/``update``/``attribution`` take the *raw* point.
  ``score(x)`` scores the shingle "previous points + x" without learning it, which is exactly
  score-before-learn. Attribution comes back per *shingled* coordinate (oldest point first);
  we sum it over the shingle positions.
* **Warm-up.** krcf counts complete shingles (``entries_seen``) and starts scoring once it
  has ``output_after`` of them; we enforce the same rule ourselves so both engines agree.
* **Validation.** A wrong-length point raises a bare ``RuntimeError`` once the forest is
  ready but scores ``0.0`` before that, and NaN is learned silently; so we check first.
* **Determinism.** Same ``random_seed`` and inputs, same scores; ``to_msgpack`` carries the
  RNG state, so ``from_msgpack`` continues identically.
* **Memory.** ``bounding_box_cache_fraction`` defaults to 1.0 in krcf, which preallocates a
  box per node: 30 trees x 128 samples x 8 features x shingle 4 then cost ~1.4 MB raw from
  the first point. Scores do not depend on the cache (checked), so we default it to 0.0. At
  the default model that leaves the point store, which grows for days as the trees' samples
  spread out: ~330 KB raw, ~225 KB zlib, ~0.4-0.5 MB resident at steady state, for 20-45 %
  less speed than with the cache. ``docs/tuning.md`` has the measurements.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final, Self

import krcf

from streams.core import snapshot
from streams.core.detector import (
    DEFAULT_NUM_TREES,
    DEFAULT_OUTPUT_AFTER,
    DEFAULT_SAMPLE_SIZE,
    DEFAULT_SHINGLE_SIZE,
    DEFAULT_TIME_DECAY,
    DetectorParams,
    ForestBase,
    check_point,
    fold_shingle,
)

_FORMAT: Final = b"aws-rcf/1"


class AwsRcf(ForestBase):
    """Random Cut Forest over krcf: the production detector.

    Parameters
    ----------
    dimensions:
        Features per window vector.
    shingle_size:
        Consecutive vectors scored together; > 1 lets the forest see changes (a step up or
        down) as well as levels. Cost grows linearly with ``dimensions * shingle_size``.
    num_trees, sample_size:
        Forest size: score variance falls with more trees, memory span and resolution grow
        with the sample. Time and state grow with ``num_trees * sample_size``.
    output_after:
        Complete shingles to learn before scoring (``score_one`` returns 0.0 until then).
    time_decay:
        Sampler forgetting per point: the sample favours roughly the last ``1/time_decay``
        points. 0 keeps a uniform sample of the whole history (never adapts).
    seed:
        The forest's random seed.
    bbox_cache_fraction:
        krcf's bounding-box cache: trades memory (and snapshot size) for speed; does not
        change scores. Not part of a model's identity.

    When it works and when not: good at points that are rare in the recent sample (a load at
    an hour the meter has not shown it, a step to a level never seen); blind to slow drifts,
    which the time-decayed sample absorbs as they happen.

    Examples
    --------
    >>> rcf = AwsRcf(1, shingle_size=1, num_trees=20, sample_size=64, output_after=16, seed=1)
    >>> scores = []
    >>> for i in range(200):
    ...     x = [float(i % 5)]
    ...     scores.append(rcf.score_one(x))
    ...     rcf.learn_one(x)
    >>> scores[0], rcf.warming_up
    (0.0, False)
    >>> normal, spike = rcf.score_one([2.0]), rcf.score_one([40.0])
    >>> spike > 2 * normal
    True
    >>> AwsRcf.from_bytes(rcf.to_bytes()).score_one([40.0]) == spike
    True
    """

    def __init__(
        self,
        dimensions: int,
        *,
        shingle_size: int = DEFAULT_SHINGLE_SIZE,
        num_trees: int = DEFAULT_NUM_TREES,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        output_after: int = DEFAULT_OUTPUT_AFTER,
        time_decay: float = DEFAULT_TIME_DECAY,
        seed: int = 0,
        bbox_cache_fraction: float = 0.0,
    ) -> None:
        self.params = DetectorParams(
            dimensions, shingle_size, num_trees, sample_size, output_after, time_decay, seed
        )
        if not 0.0 <= bbox_cache_fraction <= 1.0:
            raise ValueError(f"bbox_cache_fraction must be in [0, 1], got {bbox_cache_fraction}")
        self._forest = krcf.RandomCutForest(
            {
                "dimensions": dimensions,
                "shingle_size": shingle_size,
                "num_trees": num_trees,
                "sample_size": sample_size,
                # Our warm-up rule gates output; krcf's own gate would only agree with it.
                "output_after": output_after,
                "random_seed": seed,
                # krcf's options TypedDict cannot declare this key: `lambda` is a keyword.
                "lambda": time_decay,  # type: ignore[typeddict-unknown-key]
                # One thread per forest: the worker runs many small forests, not one big one.
                "parallel_execution_enabled": False,
                "bounding_box_cache_fraction": bbox_cache_fraction,
            }
        )
        self._n_seen = 0

    def learn_one(self, x: Sequence[float]) -> None:
        """Add ``x`` to the shingle and the forest's sample."""
        self._forest.update(check_point(x, self.params.dimensions))
        self._n_seen += 1

    def score_one(self, x: Sequence[float]) -> float:
        """Anomaly score of ``x`` after the points learned so far (0.0 while warming up)."""
        point = check_point(x, self.params.dimensions)
        if self.warming_up:
            return 0.0
        return float(self._forest.score(point))

    def attribution_one(self, x: Sequence[float]) -> list[float]:
        """Each feature's share of ``score_one(x)`` (high + low directions, all shingle slots)."""
        point = check_point(x, self.params.dimensions)
        if self.warming_up:
            return [0.0] * self.params.dimensions
        divector = self._forest.attribution(point)
        per_coordinate = [h + lo for h, lo in zip(divector["high"], divector["low"], strict=True)]
        return fold_shingle(per_coordinate, self.params.dimensions, self.params.shingle_size)

    def to_bytes(self) -> bytes:
        """Parameters, our counter and krcf's msgpack (forest, shingle buffer, RNG state)."""
        header = json.dumps({"n_seen": self._n_seen}).encode()
        return snapshot.pack([_FORMAT, self.params.to_json(), header, self._forest.to_msgpack()])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """The detector :meth:`to_bytes` saved; raises ``SnapshotCorrupt`` on foreign bytes."""
        sections = snapshot.unpack(data)
        if len(sections) != 4 or sections[0] != _FORMAT:
            raise snapshot.SnapshotCorrupt("not an AwsRcf snapshot")
        params = DetectorParams.from_json(sections[1])
        detector = cls.__new__(cls)
        detector.params = params
        detector._n_seen = int(json.loads(sections[2])["n_seen"])
        try:
            detector._forest = krcf.RandomCutForest.from_msgpack(sections[3])
        except Exception as exc:  # krcf raises bare RuntimeError/ValueError on bad bytes
            raise snapshot.SnapshotCorrupt(f"unreadable krcf forest: {exc}") from exc
        return detector
