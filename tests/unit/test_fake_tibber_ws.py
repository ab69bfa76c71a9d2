"""The fake Tibber subscription socket, driven by gql's WebsocketsTransport.

Each test runs the client with ``asyncio.run`` while the fake runs on its own loop in a thread
(the ``fake_tibber`` fixture), the way the connector will meet it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from tests.fakes import (
    GOOD_TOKEN,
    HOME_OSLO,
    HOME_STOCKHOLM,
    ThreadedFakeTibber,
    close_code_of,
    close_reason_of,
    handshake_status_of,
)

pytest_plugins = ["tests.fakes.fixtures"]

UA = "meterstream/0.1.0 gql/4.4.0 (python3.11; linux)"
LIVE = gql(
    """subscription($homeId: ID!) { liveMeasurement(homeId: $homeId) {
        timestamp power accumulatedConsumption accumulatedCost currency
        powerProduction voltagePhase1 currentL1 signalStrength } }"""
)
HOMES = (HOME_OSLO, HOME_STOCKHOLM)


def live(home_id: str) -> GraphQLRequest:
    return GraphQLRequest(LIVE, variable_values={"homeId": home_id})


def transport(
    fake: ThreadedFakeTibber, token: str | None = GOOD_TOKEN, **options: Any
) -> WebsocketsTransport:
    options.setdefault("subprotocols", ["graphql-transport-ws"])
    return WebsocketsTransport(
        url=fake.ws_url,
        init_payload={} if token is None else {"token": token},
        headers={"User-Agent": UA},
        **options,
    )


async def collect(
    session: Any, home_id: str, into: list[dict[str, Any]], limit: int = 1000
) -> None:
    async for data in session.subscribe(live(home_id)):
        into.append(data["liveMeasurement"])
        if len(into) >= limit:
            return


async def wait_len(items: list[Any], n: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(items) < n:
            await asyncio.sleep(0.005)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 20))


async def connect_fails(fake: ThreadedFakeTibber, **options: Any) -> BaseException:
    client = Client(transport=transport(fake, **options))
    try:
        async with client:
            pass
    except Exception as exc:  # the test inspects what gql raised
        return exc
    raise AssertionError("connect unexpectedly succeeded")


def test_two_homes_on_one_socket_receive_frames_in_order(fake_tibber):
    got: dict[str, list[dict[str, Any]]] = {h: [] for h in HOMES}

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber, ping_interval=5)) as session:
            tasks = [asyncio.create_task(collect(session, h, got[h], limit=3)) for h in HOMES]
            await fake_tibber.await_subscriptions(2)
            for i in range(3):
                assert await fake_tibber.aemit(HOME_OSLO, power=1000.0 + i) == 1
                assert (
                    await fake_tibber.aemit(HOME_STOCKHOLM, power=2000.0 + i, voltagePhase1=None)
                    == 1
                )
            await asyncio.wait_for(asyncio.gather(*tasks), 5)

    run(scenario)

    assert [m["power"] for m in got[HOME_OSLO]] == [1000.0, 1001.0, 1002.0]
    assert [m["power"] for m in got[HOME_STOCKHOLM]] == [2000.0, 2001.0, 2002.0]
    assert all(m["voltagePhase1"] is None for m in got[HOME_STOCKHOLM])
    assert got[HOME_OSLO][0]["currency"] == "NOK"
    assert got[HOME_STOCKHOLM][0]["currency"] == "SEK"
    assert got[HOME_OSLO][0]["powerProduction"] is None  # no production meter
    assert got[HOME_STOCKHOLM][0]["powerProduction"] == 0.0

    log = fake_tibber.log
    assert log.sockets_opened_count == 1
    ((socket_id, _opened_at),) = log.sockets_opened
    assert log.user_agents_ws == [UA]
    assert log.sockets[socket_id].protocol == "graphql-transport-ws"
    assert log.sockets[socket_id].init is not None
    assert (log.sockets[socket_id].init.token_present, log.sockets[socket_id].init.token_valid) == (
        True,
        True,
    )
    assert GOOD_TOKEN not in repr(log)
    # the frame log is exactly what the client received, per home and in order
    for home in HOMES:
        assert log.measurements(home) == got[home]
    seqs = [f.seq for f in log.frames(socket_id=socket_id)]
    assert seqs == sorted(seqs)
    assert len(seqs) == 6
    assert log.subscriptions_started() == 2
    assert log.subscriptions_completed(by="client") == 2  # gql sends complete when we stop


def test_client_complete_is_honoured(fake_tibber):
    oslo: list[dict[str, Any]] = []
    stockholm: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber)) as session:
            first = asyncio.create_task(collect(session, HOME_OSLO, oslo, limit=1))
            second = asyncio.create_task(collect(session, HOME_STOCKHOLM, stockholm))
            await fake_tibber.await_subscriptions(2)
            assert await fake_tibber.aemit(HOME_OSLO) == 1
            await first  # leaving the async for sends `complete`
            await fake_tibber.await_condition(
                lambda log: log.subscriptions_completed(HOME_OSLO, by="client") == 1
            )
            assert await fake_tibber.aemit(HOME_OSLO) == 0
            assert await fake_tibber.aemit(HOME_STOCKHOLM) == 1
            await wait_len(stockholm, 1)
            second.cancel()

    run(scenario)
    assert len(oslo) == 1
    assert len(stockholm) == 1
    assert fake_tibber.log.frames(home_id=HOME_OSLO, kind=None)[-1].kind == "next"


def test_bad_token_closes_4403(fake_tibber):
    exc = run(lambda: connect_fails(fake_tibber, token="expired"))

    assert isinstance(exc, TransportConnectionFailed)
    assert isinstance(exc.__cause__, ConnectionClosedError)
    assert close_code_of(exc) == 4403
    assert close_reason_of(exc) == "Invalid token"
    (init,) = fake_tibber.log.connection_inits
    assert (init.token_present, init.token_valid) == (True, False)


def test_missing_token_closes_4500(fake_tibber):
    exc = run(lambda: connect_fails(fake_tibber, token=None))
    assert close_code_of(exc) == 4500
    assert fake_tibber.log.connection_inits[0].token_present is False


def test_third_socket_gets_4429_unless_limit_is_off(fake_tibber):
    async def scenario() -> BaseException:
        async with (
            Client(transport=transport(fake_tibber)),
            Client(transport=transport(fake_tibber)),
        ):
            return await connect_fails(fake_tibber)

    exc = run(scenario)
    assert isinstance(exc, TransportConnectionFailed)
    assert close_code_of(exc) == 4429
    assert close_reason_of(exc) == "Too many open connections on this server; count 2;"

    fake_tibber.set_connection_limit(None)
    fake_tibber.wait_condition(lambda log: not log.active_sockets)

    async def three() -> int:
        async with (
            Client(transport=transport(fake_tibber)),
            Client(transport=transport(fake_tibber)),
            Client(transport=transport(fake_tibber)),
        ):
            return len(fake_tibber.log.active_sockets)

    assert run(three) == 3


def test_wrong_subprotocol_closes_4406(fake_tibber):
    exc = run(lambda: connect_fails(fake_tibber, subprotocols=["graphql-ws"]))
    assert close_code_of(exc) == 4406
    assert fake_tibber.log.sockets[1].offered_protocols == ["graphql-ws"]


def test_stall_without_pongs_fires_gql_pong_timeout(fake_tibber):
    got: list[dict[str, Any]] = []

    async def scenario() -> BaseException:
        async with Client(
            transport=transport(fake_tibber, ping_interval=0.2, pong_timeout=0.2)
        ) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, got))
            await fake_tibber.await_subscriptions(1)
            fake_tibber.stall(answer_pings=False)
            assert await fake_tibber.aemit(HOME_OSLO) == 0
            with pytest.raises(TransportServerError) as excinfo:
                await asyncio.wait_for(task, 5)
            return excinfo.value

    exc = run(scenario)
    assert str(exc) == "No pong received after 0.2 seconds"
    assert exc.__cause__ is None
    assert close_code_of(exc) is None
    assert got == []
    log = fake_tibber.log
    assert log.sockets[1].pings_received >= 1
    assert log.sockets[1].pongs_sent == 0


def test_stall_with_pings_keeps_socket_and_resume_restarts_data(fake_tibber):
    got: list[dict[str, Any]] = []

    # close_timeout=1: on Python 3.11 gql's ping task can swallow its cancellation when a pong
    # arrives in the same loop turn as close() (asyncio.wait_for), and close() then waits for
    # close_timeout (default 10 s) with pings still going.
    options = {"ping_interval": 0.15, "pong_timeout": 0.3, "close_timeout": 1}

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber, **options)) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, got))
            await fake_tibber.await_subscriptions(1)
            fake_tibber.stall(HOME_OSLO)
            assert await fake_tibber.aemit(HOME_OSLO) == 0
            await asyncio.sleep(0.6)  # several ping/pong rounds, no timeout
            fake_tibber.resume()
            assert await fake_tibber.aemit(HOME_OSLO, power=42.0) == 1
            await wait_len(got, 1)
            task.cancel()

    run(scenario)
    assert [m["power"] for m in got] == [42.0]
    assert fake_tibber.log.sockets[1].pongs_sent >= 3


def test_error_then_complete_ends_one_home_only(fake_tibber):
    stockholm: list[dict[str, Any]] = []

    async def scenario() -> BaseException:
        async with Client(transport=transport(fake_tibber)) as session:
            failing = asyncio.create_task(collect(session, HOME_OSLO, []))
            healthy = asyncio.create_task(collect(session, HOME_STOCKHOLM, stockholm))
            await fake_tibber.await_subscriptions(2)
            assert await fake_tibber.aerror_then_complete(HOME_OSLO) == 1
            with pytest.raises(TransportQueryError) as excinfo:
                await asyncio.wait_for(failing, 5)
            assert await fake_tibber.aemit(HOME_STOCKHOLM, power=7.0) == 1
            await wait_len(stockholm, 1)
            healthy.cancel()
            return excinfo.value

    exc = run(scenario)
    assert str(exc).startswith("{'message': 'unable to start stream api:")
    assert exc.errors is not None
    assert f"for device {HOME_OSLO}" in exc.errors[0]["message"]
    assert stockholm[0]["power"] == 7.0
    log = fake_tibber.log
    assert [f.kind for f in log.frames(home_id=HOME_OSLO, kind=None)] == ["next", "complete"]
    assert log.subscriptions_completed(HOME_OSLO, by="server") == 1
    assert log.sockets_opened_count == 1  # the socket stayed up


def test_duplicate_frames_arrive_twice(fake_tibber):
    got: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber)) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, got, limit=3))
            await fake_tibber.await_subscriptions(1)
            fake_tibber.duplicate_next_frames(1)
            await fake_tibber.aemit(HOME_OSLO, timestamp="2026-03-29T01:59:59.5+01:00")
            await fake_tibber.aemit(HOME_OSLO, timestamp="2026-03-29T03:00:01+02:00")
            await asyncio.wait_for(task, 5)

    run(scenario)
    assert [m["timestamp"] for m in got] == [
        "2026-03-29T01:59:59.5+01:00",
        "2026-03-29T01:59:59.5+01:00",
        "2026-03-29T03:00:01+02:00",
    ]
    assert [f.duplicate for f in fake_tibber.log.frames(home_id=HOME_OSLO)] == [False, True, False]


def test_close_all_and_drop_all_surface_as_connection_failed(fake_tibber):
    async def subscribe_until_closed(action: Callable[[], object]) -> BaseException:
        async with Client(transport=transport(fake_tibber)) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, []))
            await fake_tibber.await_subscriptions(1)
            await asyncio.to_thread(action)
            with pytest.raises(TransportConnectionFailed) as excinfo:
                await asyncio.wait_for(task, 5)
            return excinfo.value

    going_away = run(lambda: subscribe_until_closed(fake_tibber.close_all))
    assert isinstance(going_away.__cause__, ConnectionClosedOK)
    assert close_code_of(going_away) == 1001

    revoked = run(
        lambda: subscribe_until_closed(lambda: fake_tibber.close_all(4403, "Invalid token"))
    )
    assert close_code_of(revoked) == 4403

    dropped = run(lambda: subscribe_until_closed(fake_tibber.drop_all))
    assert isinstance(dropped.__cause__, ConnectionClosedError)
    assert close_code_of(dropped) is None  # no close frame: 1006
    # the client may notice a dropped socket before the fake's handler has tidied up
    fake_tibber.wait_condition(lambda log: not log.active_sockets)
    log = fake_tibber.log
    assert [s.server_close_code for s in log.sockets.values()] == [1001, 4403, None]
    assert log.sockets[3].dropped
    assert log.active_sockets == []
    assert log.subscriptions_completed(by="socket_closed") == 3


def test_invalidate_token_can_close_its_sockets(fake_tibber):
    async def scenario() -> BaseException:
        async with Client(transport=transport(fake_tibber)) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, []))
            await fake_tibber.await_subscriptions(1)
            assert (
                await fake_tibber.arun(
                    fake_tibber.server.invalidate_token, GOOD_TOKEN, close_sockets=True
                )
                == 1
            )
            with pytest.raises(TransportConnectionFailed) as excinfo:
                await asyncio.wait_for(task, 5)
            return excinfo.value

    assert close_code_of(run(scenario)) == 4403
    assert GOOD_TOKEN not in fake_tibber.valid_tokens


def test_handshake_fault_surfaces_http_status(fake_tibber):
    fake_tibber.fail_ws_handshake(429)
    exc = run(lambda: connect_fails(fake_tibber))
    assert isinstance(exc, TransportConnectionFailed)
    assert isinstance(exc.__cause__, InvalidStatus)
    assert handshake_status_of(exc) == 429
    assert close_code_of(exc) is None
    assert fake_tibber.log.handshakes[0].status == 429
    assert fake_tibber.log.sockets_opened_count == 0


def test_invalid_subscription_gets_error_and_socket_stays_up(fake_tibber):
    got: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber)) as session:
            bad = GraphQLRequest(gql('subscription { liveMeasurement(homeId: "x") { shoeSize } }'))
            with pytest.raises(TransportQueryError, match="shoeSize"):
                async for _ in session.subscribe(bad):
                    pass
            unknown_home = GraphQLRequest(LIVE, variable_values={"homeId": "not-mine"})
            with pytest.raises(TransportQueryError, match="Could not find home"):
                async for _ in session.subscribe(unknown_home):
                    pass
            task = asyncio.create_task(collect(session, HOME_OSLO, got, limit=1))
            await fake_tibber.await_subscriptions(1)
            await fake_tibber.aemit(HOME_OSLO)
            await asyncio.wait_for(task, 5)

    run(scenario)
    assert len(got) == 1
    kinds = [f.kind for f in fake_tibber.log.frames(kind=None)]
    assert kinds[:3] == ["error", "next", "complete"]
    assert fake_tibber.log.sockets_opened_count == 1


def test_null_in_non_null_field_is_a_graphql_error_unless_sent_raw(fake_tibber):
    got: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with Client(transport=transport(fake_tibber)) as session:
            task = asyncio.create_task(collect(session, HOME_OSLO, []))
            await fake_tibber.await_subscriptions(1)
            await fake_tibber.aemit(HOME_OSLO, power=None)
            with pytest.raises(
                TransportQueryError, match=r"non-nullable field LiveMeasurement\.power"
            ):
                await asyncio.wait_for(task, 5)
            task = asyncio.create_task(collect(session, HOME_OSLO, got, limit=1))
            # The first subscription stays live until the client's `complete` arrives: wait
            # for the second one to start and the first one to end.
            await fake_tibber.await_condition(
                lambda log: (
                    log.subscriptions_started(HOME_OSLO) == 2
                    and len(log.active_subscriptions(HOME_OSLO)) == 1
                )
            )
            raw = {
                "data": {
                    "liveMeasurement": {"timestamp": "2026-01-01T00:00:00+01:00", "power": None}
                }
            }
            assert await fake_tibber.arun(fake_tibber.server.emit_raw, HOME_OSLO, raw) == 1
            await asyncio.wait_for(task, 5)

    run(scenario)
    assert got == [{"timestamp": "2026-01-01T00:00:00+01:00", "power": None}]
