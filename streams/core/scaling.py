"""Streaming per-dimension standardisation in front of the Random Cut Forest.

Why: RCF chooses a cut dimension with probability proportional to that dimension's range in
the sample. Unscaled, power in watts (range ~ thousands) would take almost every cut and the
voltage (range ~ a few volts) or time of day (range 2) would almost never be looked at.
Standardising each dimension to roughly unit variance gives each a fair share of cuts.

:class:`OnlineScaler` keeps Welford's running mean and variance per dimension: one pass,
numerically stable, and a deterministic function of the vectors it learned, in order, so a
replay or a restored snapshot gives bit-identical outputs.

* ``std_floor`` (per dimension, in each feature's own unit): a feature that has been constant
  so far (no current sensor, a flat standby load) has std 0; dividing by it would blow the
  first small change up to infinity. The floor says how big a change counts as one sigma at
  least. :meth:`streams.core.features.FeatureSpec.std_floors` has floors for each feature.
* ``clip``: outputs are clipped to ±clip, so one absurd window can't stretch a dimension's
  range in the forest's sample (which would starve the other dimensions of cuts).
* ``warmup``: :attr:`OnlineScaler.ready` turns True after that many vectors. Before that the
  statistics are too rough to score with; :meth:`OnlineScaler.transform` still answers with the
  current statistics, and the caller decides (the detector reports ``warming_up``).

Score before learn, as River does: ``z = scaler.transform(x)`` then ``scaler.learn_one(x)``.

>>> s = OnlineScaler(2, warmup=3, std_floor=[1.0, 0.1])
>>> for x in ([1000.0, 230.0], [1200.0, 230.0], [800.0, 230.0]):
...     s.learn_one(x)
>>> s.ready, s.mean, s.std
(True, (1000.0, 230.0), (200.0, 0.0))
>>> s.transform([1400.0, 230.5])  # +2 sigma; 0.5 V over a constant voltage, floored at 0.1
[2.0, 5.0]
>>> OnlineScaler.from_bytes(s.to_bytes()) == s
True
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

__all__ = ["OnlineScaler", "ScalerStateError"]

_VERSION = 1
_HEADER = struct.Struct("<BHqqd")  # version, dim, count, warmup, clip


class ScalerStateError(ValueError):
    """Stored scaler state can't be decoded (corrupt or another format version)."""


class OnlineScaler:
    """Per-dimension running standardisation: ``(x - mean) / max(std, floor)``, clipped.

    Parameters
    ----------
    dim:
        Vector length.
    warmup:
        Vectors to learn before :attr:`ready` is True.
    std_floor:
        Lowest std used per dimension (one float for all, or one per dimension); must be > 0.
    clip:
        Outputs are clipped to ``[-clip, clip]``.
    """

    __slots__ = ("_clip", "_count", "_floor", "_m2", "_mean", "_warmup")

    def __init__(
        self,
        dim: int,
        *,
        warmup: int = 30,
        std_floor: float | Sequence[float] = 1e-3,
        clip: float = 10.0,
    ) -> None:
        floors = [float(std_floor)] * dim if isinstance(std_floor, int | float) else list(std_floor)
        if dim < 1 or len(floors) != dim:
            raise ValueError(f"dim={dim} with {len(floors)} std floors")
        if not all(f > 0 and math.isfinite(f) for f in floors) or not clip > 0 or warmup < 0:
            raise ValueError("std floors and clip must be positive and finite, warmup >= 0")
        self._floor = floors
        self._warmup = warmup
        self._clip = float(clip)
        self._count = 0
        self._mean = [0.0] * dim
        self._m2 = [0.0] * dim  # sum of squared deviations from the running mean

    @property
    def dim(self) -> int:
        return len(self._mean)

    @property
    def count(self) -> int:
        return self._count

    @property
    def ready(self) -> bool:
        """True once ``warmup`` vectors have been learned."""
        return self._count >= self._warmup

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self._mean)

    @property
    def std(self) -> tuple[float, ...]:
        """Sample standard deviation per dimension (0.0 before two vectors), before the floor."""
        if self._count < 2:
            return (0.0,) * self.dim
        return tuple(math.sqrt(m2 / (self._count - 1)) for m2 in self._m2)

    def _check(self, x: Sequence[float]) -> None:
        if len(x) != len(self._mean):
            raise ValueError(f"expected {len(self._mean)} dimensions, got {len(x)}")
        if not all(math.isfinite(v) for v in x):
            raise ValueError(f"non-finite value in {list(x)}")

    def learn_one(self, x: Sequence[float]) -> None:
        """Update the running statistics with one vector (all finite)."""
        self._check(x)
        self._count += 1
        n = self._count
        mean, m2 = self._mean, self._m2
        for i, v in enumerate(x):
            delta = v - mean[i]
            mean[i] += delta / n
            m2[i] += delta * (v - mean[i])

    def transform(self, x: Sequence[float]) -> list[float]:
        """Standardise one vector with the current statistics; does not learn."""
        self._check(x)
        clip = self._clip
        out = []
        for v, mu, sigma, floor in zip(x, self._mean, self.std, self._floor, strict=True):
            z = (v - mu) / max(sigma, floor)
            out.append(min(max(z, -clip), clip))
        return out

    def to_bytes(self) -> bytes:
        """Exact binary snapshot (float64 statistics, little-endian)."""
        dim = len(self._mean)
        header = _HEADER.pack(_VERSION, dim, self._count, self._warmup, self._clip)
        return header + struct.pack(f"<{3 * dim}d", *self._floor, *self._mean, *self._m2)

    @classmethod
    def from_bytes(cls, data: bytes) -> OnlineScaler:
        """Restore a snapshot written by :meth:`to_bytes`; raises :class:`ScalerStateError`."""
        try:
            version, dim, count, warmup, clip = _HEADER.unpack_from(data, 0)
            if version != _VERSION:
                raise ScalerStateError(f"scaler state version {version}, expected {_VERSION}")
            if len(data) != _HEADER.size + 24 * dim:
                raise ScalerStateError(f"scaler state of {len(data)} bytes for dim={dim}")
            values = struct.unpack_from(f"<{3 * dim}d", data, _HEADER.size)
            obj = cls(dim, warmup=warmup, std_floor=values[:dim], clip=clip)
        except (struct.error, ValueError) as exc:
            if isinstance(exc, ScalerStateError):
                raise
            raise ScalerStateError(f"corrupt scaler state: {exc}") from exc
        obj._count = count
        obj._mean = list(values[dim : 2 * dim])
        obj._m2 = list(values[2 * dim :])
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OnlineScaler):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"OnlineScaler(dim={self.dim}, count={self._count}, ready={self.ready})"
