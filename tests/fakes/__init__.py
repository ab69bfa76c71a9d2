"""A protocol-faithful fake of Tibber's GraphQL API (HTTP + graphql-transport-ws) for tests.

See docs/tibber-api.md for the behaviour it reproduces, :mod:`tests.fakes.server` for the
asyncio API, :mod:`tests.fakes.threaded` for the background-thread variant behind the
``fake_tibber`` fixture (:mod:`tests.fakes.fixtures`), and :mod:`tests.fakes.close_codes` for
reading close codes out of gql's exceptions.
"""

from tests.fakes.close_codes import close_code_of, close_reason_of, handshake_status_of
from tests.fakes.homes import (
    DEMO_HOME_ID,
    DEMO_TOKEN,
    DEMO_USER_NAME,
    GOOD_TOKEN,
    HOME_OSLO,
    HOME_STOCKHOLM,
    FakeHome,
    default_homes,
    demo_home,
)
from tests.fakes.measurements import LIVE_FIELDS, tibber_timestamp
from tests.fakes.records import FakeTibberLog
from tests.fakes.server import HTTP_PATH, WS_PATH, FakeTibber
from tests.fakes.threaded import ThreadedFakeTibber

__all__ = [
    "DEMO_HOME_ID",
    "DEMO_TOKEN",
    "DEMO_USER_NAME",
    "GOOD_TOKEN",
    "HOME_OSLO",
    "HOME_STOCKHOLM",
    "HTTP_PATH",
    "LIVE_FIELDS",
    "WS_PATH",
    "FakeHome",
    "FakeTibber",
    "FakeTibberLog",
    "ThreadedFakeTibber",
    "close_code_of",
    "close_reason_of",
    "default_homes",
    "demo_home",
    "handshake_status_of",
    "tibber_timestamp",
]
