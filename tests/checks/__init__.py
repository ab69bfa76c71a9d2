"""Generated conformance checks for every detector, threshold, model and snapshot codec.

Like ``river/checks``: each estimator is registered once with a seeded factory
(:data:`ESTIMATORS`), :func:`yield_checks` yields the checks that apply to its kind, and
``tests/unit/test_detector_checks.py`` parametrizes every estimator against every check. A new
engine or threshold gets the whole suite by adding one line here.

What is checked (where it applies):

* the input is not mutated;
* the same seed gives the same outputs (and another seed, other scores);
* a snapshot round trip gives an identical next output, and later ones too;
* a wrong feature set (length, names, non-finite values) raises a clear error;
* ROC AUC on injected spikes is above 0.5 (a detector that ranks spikes at random fails);
* warm-up returns 0.0 (detectors, models) or no decision (thresholds);
* scoring does not learn; attribution adds up to the score;
* codecs round-trip and refuse corrupted, truncated or mixed-up bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tests.checks import codec, detector, model, threshold
from tests.checks.registry import ESTIMATORS, Estimator

__all__ = ["ESTIMATORS", "Estimator", "yield_checks"]

_CHECKS: dict[str, tuple[Callable[[Estimator], None], ...]] = {
    "detector": detector.CHECKS,
    "threshold": threshold.CHECKS,
    "model": model.CHECKS,
    "codec": codec.CHECKS,
}


def yield_checks(estimator: Estimator) -> Iterator[Callable[[Estimator], None]]:
    """Every check that applies to ``estimator``'s kind."""
    yield from _CHECKS[estimator.kind]
