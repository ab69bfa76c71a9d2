"""The fake Tibber API's HTTP GraphQL endpoint, driven by gql's AIOHTTPTransport."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError, TransportServerError

from tests.fakes import (
    DEMO_HOME_ID,
    DEMO_TOKEN,
    GOOD_TOKEN,
    HOME_OSLO,
    HOME_STOCKHOLM,
    FakeHome,
    FakeTibber,
    demo_home,
)

pytest_plugins = ["tests.fakes.fixtures"]

UA = "meterstream/0.1.0 gql/4.4.0 (python3.11; linux)"

DISCOVERY = """
{ viewer { userId name websocketSubscriptionUrl
    homes { id appNickname timeZone
      address { address1 postalCode city country latitude longitude }
      meteringPointData { consumptionEan productionEan gridCompany gridAreaCode priceAreaCode }
      features { realTimeConsumptionEnabled }
      currentSubscription { status } } } }
"""

CONSUMPTION = """
query($homeId: ID!, $res: EnergyResolution!, $first: Int, $last: Int, $before: String,
      $after: String, $filter: Boolean) {
  viewer { home(id: $homeId) {
    consumption(resolution: $res, first: $first, last: $last, before: $before, after: $after,
                filterEmptyNodes: $filter) {
      pageInfo { startCursor endCursor hasPreviousPage hasNextPage count filtered
                 totalConsumption totalCost currency }
      nodes { from to consumption consumptionUnit cost unitPrice unitPriceVAT currency }
    } } } }
"""


async def _execute(url: str, query: str, token: str = GOOD_TOKEN, **variables: Any) -> Any:
    transport = AIOHTTPTransport(
        url=url, headers={"Authorization": f"Bearer {token}", "User-Agent": UA}
    )
    async with Client(transport=transport) as session:
        request = GraphQLRequest(gql(query), variable_values=variables or None)
        return await session.execute(request)


def run(url: str, query: str, token: str = GOOD_TOKEN, **variables: Any) -> Any:
    return asyncio.run(_execute(url, query, token, **variables))


def test_discovery_returns_homes_and_ws_url(fake_tibber):
    data = run(fake_tibber.http_url, DISCOVERY)

    viewer = data["viewer"]
    assert viewer["websocketSubscriptionUrl"] == fake_tibber.ws_url
    assert fake_tibber.ws_url.startswith("ws://127.0.0.1:")
    assert [h["id"] for h in viewer["homes"]] == [HOME_OSLO, HOME_STOCKHOLM]
    oslo, stockholm = viewer["homes"]
    assert oslo["timeZone"] == "Europe/Oslo"
    assert oslo["features"] == {"realTimeConsumptionEnabled": True}
    assert oslo["meteringPointData"]["productionEan"] == ""
    assert stockholm["appNickname"] is None
    assert stockholm["meteringPointData"]["productionEan"]
    assert stockholm["currentSubscription"] == {"status": "running"}

    log = fake_tibber.log
    assert log.http_request_count == 1
    assert log.user_agents_http == [UA]
    assert log.http[0].headers["Authorization"] == "<redacted>"
    assert log.http[0].token_valid
    assert "query" in log.http[0].body
    assert GOOD_TOKEN not in repr(log)


def test_unknown_field_and_missing_variable_are_graphql_errors(fake_tibber):
    with pytest.raises(TransportQueryError) as unknown:
        run(fake_tibber.http_url, "{ viewer { name shoeSize } }")
    assert "shoeSize" in str(unknown.value)
    assert unknown.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    with pytest.raises(TransportQueryError) as missing:
        run(fake_tibber.http_url, "query($id: ID!) { viewer { home(id: $id) { id } } }")
    assert "$id" in str(missing.value)

    with pytest.raises(TransportQueryError, match="Could not find home"):
        run(fake_tibber.http_url, '{ viewer { home(id: "nope") { id } } }')


def test_invalid_token_is_http_200_unauthenticated(fake_tibber):
    with pytest.raises(TransportQueryError) as excinfo:
        run(fake_tibber.http_url, DISCOVERY, token="wrong")
    assert excinfo.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert fake_tibber.log.http[0].status == 200
    assert not fake_tibber.log.http[0].token_valid

    fake_tibber.invalidate_token(GOOD_TOKEN)
    with pytest.raises(TransportQueryError, match="invalid token"):
        run(fake_tibber.http_url, DISCOVERY)


def test_http_faults_answer_status_then_recover(fake_tibber):
    fake_tibber.fail_http(429, times=2)
    fake_tibber.fail_http(503)
    codes = []
    for _ in range(3):
        with pytest.raises(TransportServerError) as excinfo:
            run(fake_tibber.http_url, DISCOVERY)
        codes.append(excinfo.value.code)
    assert codes == [429, 429, 503]
    assert run(fake_tibber.http_url, DISCOVERY)["viewer"]["homes"]
    assert [r.status for r in fake_tibber.log.http] == [429, 429, 503, 200]


def test_blocked_user_agent_gets_http_400(fake_tibber):
    fake_tibber.block_user_agent("meterstream/0.1.0")
    with pytest.raises(TransportServerError) as excinfo:
        run(fake_tibber.http_url, DISCOVERY)
    assert excinfo.value.code == 400


def test_switches_show_in_discovery(fake_tibber):
    fake_tibber.set_real_time_enabled(HOME_STOCKHOLM, None)
    fake_tibber.advertise_ws_url(None)
    viewer = run(fake_tibber.http_url, DISCOVERY)["viewer"]
    assert viewer["websocketSubscriptionUrl"] is None
    assert viewer["homes"][1]["features"]["realTimeConsumptionEnabled"] is None


def test_subscription_over_http_is_refused(fake_tibber):
    query = 'subscription { liveMeasurement(homeId: "x") { power } }'
    with pytest.raises(TransportQueryError, match="websocketSubscriptionUrl"):
        run(fake_tibber.http_url, query)


def _history_home() -> FakeHome:
    end = datetime(2026, 3, 31, 0, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    return FakeHome(
        id=HOME_OSLO,
        history_end=end,
        history_days=60,
        consumption_kwh=lambda start: None if (start.day, start.hour) == (30, 3) else 1.0,
        price_per_kwh=lambda start: 2.0,
    )


def test_consumption_pages_back_with_cursors_and_caps(fake_tibber_factory):
    fake = fake_tibber_factory(homes=[_history_home()])

    def page(**variables: Any) -> Any:
        data = run(fake.http_url, CONSUMPTION, homeId=HOME_OSLO, **variables)
        return data["viewer"]["home"]["consumption"]

    last = page(res="HOURLY", last=24)
    assert last["pageInfo"]["count"] == 24
    assert last["nodes"][-1]["from"] == "2026-03-30T23:00:00.000+02:00"
    assert last["nodes"][-1]["to"] == "2026-03-31T00:00:00.000+02:00"
    assert last["pageInfo"]["hasPreviousPage"]
    assert not last["pageInfo"]["hasNextPage"]
    assert last["nodes"][0]["consumptionUnit"] == "kWh"
    assert last["nodes"][0]["currency"] == "NOK"
    assert last["pageInfo"]["totalConsumption"] == 23.0  # one hour not delivered yet

    before = page(res="HOURLY", last=24, before=last["pageInfo"]["startCursor"])
    assert before["nodes"][-1]["to"] == last["nodes"][0]["from"]

    capped = page(res="HOURLY", last=5000)
    assert capped["pageInfo"]["count"] == 744

    start = base64.b64encode(b"2026-03-29").decode()
    dst_day = page(res="HOURLY", first=24, after=start)
    assert dst_day["nodes"][0]["from"] == "2026-03-29T00:00:00.000+01:00"
    assert dst_day["nodes"][2]["from"] == "2026-03-29T03:00:00.000+02:00"  # 02:00 does not exist

    filtered = page(res="HOURLY", last=24, filter=True)
    assert filtered["pageInfo"]["filtered"] == 1
    assert all(n["consumption"] is not None for n in filtered["nodes"])

    daily = page(res="DAILY", last=100)
    assert daily["pageInfo"]["count"] == 31
    assert daily["nodes"][-2]["from"] == "2026-03-29T00:00:00.000+01:00"
    assert daily["nodes"][-2]["consumption"] == 23.0  # the 23-hour DST day
    assert daily["nodes"][-2]["cost"] == 46.0

    monthly = page(res="MONTHLY", last=12)
    assert [n["from"][:7] for n in monthly["nodes"]] == ["2026-02"]  # only complete months

    with pytest.raises(TransportQueryError, match="Invalid cursor"):
        page(res="HOURLY", first=2, after="%%%")


def test_demo_account_and_in_loop_context_manager():
    async def scenario() -> Any:
        async with FakeTibber(
            tokens={DEMO_TOKEN}, homes=[demo_home()], user_name="Arya Stark"
        ) as fake:
            return await _execute(fake.http_url, DISCOVERY, token=DEMO_TOKEN)

    viewer = asyncio.run(scenario())["viewer"]
    assert viewer["name"] == "Arya Stark"
    assert viewer["homes"][0]["id"] == DEMO_HOME_ID
    assert viewer["homes"][0]["address"]["address1"] == "Winterfell Castle 1"
