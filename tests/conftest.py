"""Test-suite wiring: hypothesis profiles, markers, and real services for integration tests.

Tests never read ``.env`` or ``.meterstream/dev.env``, so they cannot write into a developer's
running stack; the variables below are set before any settings object is built, and
subprocesses inherit them.
"""

from __future__ import annotations

import os

os.environ["METERSTREAM_DEV_ENV_FILE"] = ""
os.environ["METERSTREAM_ENV_FILE"] = ""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.services.fixtures", "tests.fakes.fixtures"]

# CI: a fixed seed (derandomize) and no deadline: a busy 2-core machine makes the 200 ms
# default deadline flaky. Locally: random exploration, still without a deadline.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

_INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
