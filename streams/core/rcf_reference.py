"""Robust Random Cut Forest (rrcf, pure Python) behind the Detector contract: the reference.

Slow (about 200x slower than :mod:`streams.core.rcf_aws`) but short and readable, so it is a
second, independent implementation to compare against and to test the contract with. It
follows the rrcf streaming example: every tree holds the same last ``sample_size`` shingles
(FIFO forget), and a point's score is its collusive displacement (CoDisp) averaged over the
trees.

How this differs from the AWS engine, on purpose or not:

* Memory is exactly ``sample_size`` points (FIFO); ``time_decay`` is accepted for a common
  signature, stored, and ignored. With one point per 60 s window, 128 samples remember only
  ~2 hours, so the reference does not know the daily rhythm.
* Scores are CoDisp, not AWS's normalised score: same ordering idea, different scale.
* rrcf has no attribution; ours gives each tree's CoDisp to the dimension of the cut that
  separated the point's subtree at the level where the displacement peaked.
* Scoring inserts the point, measures it and forgets it again; each tree's generator state is
  saved and put back around that, so scoring never changes what the next learn does.

Snapshot: rrcf's ``RCTree.to_dict`` leaves out ``self.rng`` (a ``numpy.random.RandomState``)
although every insert draws from it, so restoring trees alone would change later cuts. We
store, per tree, ``to_dict()`` plus the generator's full MT19937 state; plus our shingle
buffer, FIFO index and counters. FIFO needs no sampler RNG of its own, so that is all the
randomness there is.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Self

import numpy as np
import rrcf

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

_FORMAT: Final = b"rrcf-ref/1"
_PROBE: Final = -1  # leaf index of the point being scored; real indices are >= 0


class ReferenceRcf(ForestBase):
    """rrcf forest with a FIFO sample of ``sample_size`` shingles; same parameters as
    :class:`streams.core.rcf_aws.AwsRcf` (``time_decay`` is ignored, see the module docstring).

    Examples
    --------
    >>> rcf = ReferenceRcf(1, shingle_size=1, num_trees=5, sample_size=32, output_after=8, seed=1)
    >>> for i in range(60):
    ...     rcf.learn_one([float(i % 5)])
    >>> normal, spike = rcf.score_one([2.0]), rcf.score_one([40.0])
    >>> spike > 2 * normal
    True
    >>> round(sum(rcf.attribution_one([40.0])), 9) == round(spike, 9)
    True
    >>> ReferenceRcf.from_bytes(rcf.to_bytes()).score_one([40.0]) == spike
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
    ) -> None:
        self.params = DetectorParams(
            dimensions, shingle_size, num_trees, sample_size, output_after, time_decay, seed
        )
        # One independent stream per tree, all derived from the one seed.
        seeds = np.random.SeedSequence(seed).generate_state(num_trees)
        self._trees = [rrcf.RCTree(random_state=int(s)) for s in seeds]
        self._buffer: deque[list[float]] = deque(maxlen=max(shingle_size - 1, 0))
        self._next_index = 0  # FIFO index of the next shingle learned
        self._n_seen = 0

    def _shingle(self, point: list[float]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        """The previous points followed by ``point``, or None while the buffer is not full."""
        if len(self._buffer) < self.params.shingle_size - 1:
            return None
        return np.array([v for p in self._buffer for v in p] + point, dtype=np.float64)

    def learn_one(self, x: Sequence[float]) -> None:
        point = check_point(x, self.params.dimensions)
        shingle = self._shingle(point)
        if shingle is not None:
            oldest = self._next_index - self.params.sample_size
            for tree in self._trees:
                if oldest >= 0:
                    tree.forget_point(oldest)
                tree.insert_point(shingle, index=self._next_index)
            self._next_index += 1
        if self._buffer.maxlen:
            self._buffer.append(point)
        self._n_seen += 1

    def _probe(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """(score, per-shingled-coordinate attribution) of ``x``; state is left unchanged."""
        point = check_point(x, self.params.dimensions)
        width = self.params.dimensions * self.params.shingle_size
        shingle = self._shingle(point)
        if self.warming_up or shingle is None:
            return 0.0, [0.0] * width
        total, per_coordinate = 0.0, [0.0] * width
        for tree in self._trees:
            rng_state = tree.rng.get_state()
            leaf = tree.insert_point(shingle, index=_PROBE)
            codisp, cut_dimension = _codisp_and_cut(leaf, tree.root)
            tree.forget_point(_PROBE)
            tree.rng.set_state(rng_state)
            total += codisp
            if cut_dimension is not None:
                per_coordinate[cut_dimension] += codisp
        n = len(self._trees)
        return total / n, [v / n for v in per_coordinate]

    def score_one(self, x: Sequence[float]) -> float:
        """Mean CoDisp of ``x``'s shingle over the trees (0.0 while warming up)."""
        return self._probe(x)[0]

    def attribution_one(self, x: Sequence[float]) -> list[float]:
        """Per-feature share of ``score_one(x)``, summed over the shingle positions."""
        per_coordinate = self._probe(x)[1]
        return fold_shingle(per_coordinate, self.params.dimensions, self.params.shingle_size)

    def to_bytes(self) -> bytes:
        trees = []
        for tree in self._trees:
            _, key, pos, has_gauss, gauss = tree.rng.get_state()
            trees.append(
                {
                    "tree": tree.to_dict() if tree.root is not None else None,
                    "rng": [key.tolist(), int(pos), int(has_gauss), float(gauss)],
                }
            )
        state = {
            "n_seen": self._n_seen,
            "next_index": self._next_index,
            "buffer": list(self._buffer),
            "trees": trees,
        }
        # JSON writes floats with repr(), which round-trips float64 exactly.
        body = json.dumps(state, separators=(",", ":")).encode()
        return snapshot.pack([_FORMAT, self.params.to_json(), body])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        sections = snapshot.unpack(data)
        if len(sections) != 3 or sections[0] != _FORMAT:
            raise snapshot.SnapshotCorrupt("not a ReferenceRcf snapshot")
        p = DetectorParams.from_json(sections[1])
        detector = cls(
            p.dimensions,
            shingle_size=p.shingle_size,
            num_trees=p.num_trees,
            sample_size=p.sample_size,
            output_after=p.output_after,
            time_decay=p.time_decay,
            seed=p.seed,
        )
        state = json.loads(sections[2])
        detector._n_seen = int(state["n_seen"])
        detector._next_index = int(state["next_index"])
        detector._buffer.extend([float(v) for v in point] for point in state["buffer"])
        for tree, saved in zip(detector._trees, state["trees"], strict=True):
            if saved["tree"] is not None:
                tree.load_dict(saved["tree"])
            key, pos, has_gauss, gauss = saved["rng"]
            tree.rng.set_state(("MT19937", np.array(key, dtype=np.uint32), pos, has_gauss, gauss))
        return detector


def _codisp_and_cut(leaf: Any, root: Any) -> tuple[float, int | None]:
    """rrcf's ``RCTree.codisp`` walk, also returning the cut dimension at the peak level.

    Going up from the leaf, each level's displacement ratio is sibling size over own subtree
    size; CoDisp is the largest ratio (the first one on ties, as rrcf's ``max``), and the
    parent's cut dimension at that level is what separated the point's subtree.
    """
    if leaf is root:
        return 0.0, None
    best, best_cut = -1.0, None
    node = leaf
    for _ in range(leaf.d):
        parent = node.u
        if parent is None:
            break
        sibling = parent.r if node is parent.l else parent.l
        ratio = float(sibling.n / node.n)
        if ratio > best:
            best, best_cut = ratio, int(parent.q)
        node = parent
    return max(best, 0.0), best_cut
