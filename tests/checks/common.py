"""Shared stream and metric helpers for the checks (pure, seeded)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def spiky_stream(
    n: int, dims: int, seed: int, *, start_spikes: int, every: int = 15
) -> tuple[list[list[float]], list[bool]]:
    """A smooth periodic stream with noise; from ``start_spikes`` on, every ``every``-th point
    (jittered) gets +8 on one random dimension. Returns the points and the spike labels."""
    rng = random.Random(seed)
    points, labels = [], []
    for i in range(n):
        x = [math.sin(2 * math.pi * i / 24 + d) + rng.gauss(0.0, 0.1) for d in range(dims)]
        spike = i >= start_spikes and rng.random() < 1.0 / every
        if spike:
            x[rng.randrange(dims)] += 8.0
        points.append(x)
        labels.append(spike)
    return points, labels


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        raise ValueError("need both positives and negatives")
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))
