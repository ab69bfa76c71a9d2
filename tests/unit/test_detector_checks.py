"""Every estimator (both RCF engines, every threshold, the meter model, the snapshot codec)
against every check that applies to it: see ``tests/checks``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.checks import ESTIMATORS, Estimator, yield_checks

CASES = [
    pytest.param(estimator, check, id=f"{estimator.name}-{check.__name__.removeprefix('check_')}")
    for estimator in ESTIMATORS
    for check in yield_checks(estimator)
]


@pytest.mark.parametrize(("estimator", "check"), CASES)
def test_check(estimator: Estimator, check: Callable[[Estimator], None]) -> None:
    check(estimator)
