"""Fault points: armed by name and count, killing by default, raising on request."""

from __future__ import annotations

import pytest

from meterstream import faults


def test_an_unarmed_point_does_nothing() -> None:
    faults.arm("")
    faults.fault_point("after_output")


def test_a_raising_point_raises_on_the_armed_pass_only() -> None:
    faults.arm("batch_applied@3:raise")
    faults.fault_point("batch_applied")
    faults.fault_point("batch_applied")
    with pytest.raises(faults.InjectedFault, match="batch_applied reached \\(3\\)"):
        faults.fault_point("batch_applied")
    faults.fault_point("batch_applied")  # once: a restarted agent is not hit again
    faults.arm("")


def test_points_are_independent() -> None:
    faults.arm("a@2:raise, b:raise")
    faults.fault_point("a")
    with pytest.raises(faults.InjectedFault):
        faults.fault_point("b")
    with pytest.raises(faults.InjectedFault):
        faults.fault_point("a")
    faults.arm("")
