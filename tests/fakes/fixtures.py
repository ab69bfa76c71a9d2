"""Pytest fixtures for the fake Tibber API (sync: the fake runs in a background thread).

Register with ``pytest_plugins = ["tests.fakes.fixtures"]`` (root conftest or the test module).

``fake_tibber`` serves token :data:`GOOD_TOKEN` and :func:`default_homes` (Oslo and Stockholm,
both streaming); ``fake_tibber_factory(**FakeTibber kwargs)`` builds others. Everything started
is stopped at teardown, closing open sockets with 1001.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.threaded import ThreadedFakeTibber


@pytest.fixture
def fake_tibber_factory() -> Iterator[Callable[..., ThreadedFakeTibber]]:
    started: list[ThreadedFakeTibber] = []

    def make(**options: Any) -> ThreadedFakeTibber:
        fake = ThreadedFakeTibber(**options).start()
        started.append(fake)
        return fake

    yield make
    for fake in reversed(started):
        fake.stop()


@pytest.fixture
def fake_tibber(
    fake_tibber_factory: Callable[..., ThreadedFakeTibber],
) -> ThreadedFakeTibber:
    return fake_tibber_factory()
