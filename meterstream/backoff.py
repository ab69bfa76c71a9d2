"""Exponential backoff with jitter, shared by the connector's reconnects and the sinks' retries."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with jitter: the n-th delay lies in [base/2, base], base = min*2**n, capped.

    Jitter spreads reconnects of many homelabs after a Tibber restart; the lower bound keeps
    every delay at or above ``minimum``.

    >>> backoff = Backoff(minimum=5, maximum=60, rng=random.Random(1))
    >>> [round(backoff.next_delay(), 1) for _ in range(6)]
    [5.0, 9.2, 17.6, 25.1, 44.9, 43.5]
    """

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("need 0 < minimum <= maximum")
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay(self) -> float:
        base = min(self.maximum, self.minimum * 2.0**self.failures)
        self.failures += 1
        return max(self.minimum, self._rng.uniform(base / 2, base))

    def reset(self) -> None:
        self.failures = 0
