"""The fake's realistic measurements: Tibber timestamps, counters, nulls."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from tests.fakes import GOOD_TOKEN, HOME_OSLO, LIVE_FIELDS, FakeHome, FakeTibber
from tests.fakes.measurements import MeterState

ALL_FIELDS = gql(
    "subscription($homeId: ID!) { liveMeasurement(homeId: $homeId) { "
    + " ".join(LIVE_FIELDS)
    + " } }"
)


def test_series_over_dst_reaches_the_client_with_local_offsets_and_varied_fractions():
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with FakeTibber() as fake:
            transport = WebsocketsTransport(
                url=fake.ws_url,
                init_payload={"token": GOOD_TOKEN},
                subprotocols=["graphql-transport-ws"],
            )
            async with Client(transport=transport) as session:
                got: list[dict[str, Any]] = []

                async def consume() -> None:
                    request = GraphQLRequest(ALL_FIELDS, variable_values={"homeId": HOME_OSLO})
                    async for data in session.subscribe(request):
                        got.append(data["liveMeasurement"])
                        if len(got) == 8:
                            return

                task = asyncio.create_task(consume())
                await fake.wait_for_subscriptions(1)
                sent = await fake.emit_series(HOME_OSLO, datetime(2026, 3, 29, 1, 59, 52), 8, 2.0)
                await asyncio.wait_for(task, 5)
                return sent, got

    sent, got = asyncio.run(scenario())
    assert got == sent
    stamps = [m["timestamp"] for m in got]
    assert stamps[:4] == [
        "2026-03-29T01:59:52+01:00",
        "2026-03-29T01:59:54.5+01:00",
        "2026-03-29T01:59:56.123+01:00",
        "2026-03-29T01:59:58.04+01:00",
    ]
    assert stamps[4] == "2026-03-29T03:00:00.987654+02:00"  # clocks jumped from 02:00 to 03:00
    assert all(s.endswith("+02:00") for s in stamps[4:])
    moments = [datetime.fromisoformat(s) for s in stamps]
    assert moments == sorted(moments)
    # the meter keeps counting across the DST jump; the hour counter restarts at 03:00
    assert got[4]["accumulatedConsumptionLastHour"] < got[3]["accumulatedConsumptionLastHour"]
    assert got[4]["accumulatedConsumption"] > got[3]["accumulatedConsumption"]
    # Kaifa/Aidon style: phase values only at second 0, 10, ..., 50
    assert [m["voltagePhase1"] is not None for m in got] == [
        False, False, False, False, True, False, False, False,
    ]  # fmt: skip
    assert got[0]["lastMeterProduction"] is None  # Oslo has no production meter
    assert got[0]["currency"] == "NOK"


def test_counters_reset_at_local_midnight():
    meter = MeterState(FakeHome(id="h", time_zone="Europe/Oslo"))
    before = meter.measurement({"timestamp": "2026-01-05T23:59:58+01:00", "power": 3600.0})
    late = meter.measurement({"timestamp": "2026-01-05T23:59:59.5+01:00", "power": 3600.0})
    after = meter.measurement({"timestamp": "2026-01-06T00:00:01+01:00", "power": 1800.0})

    assert late["accumulatedConsumption"] == pytest.approx(
        before["accumulatedConsumption"] + 0.0015
    )
    assert after["accumulatedConsumption"] == pytest.approx(0.00075)  # 1.5 s at 1.8 kW
    assert after["accumulatedConsumptionLastHour"] == after["accumulatedConsumption"]
    assert (after["minPower"], after["maxPower"], after["averagePower"]) == (1800.0, 1800.0, 1800.0)
    assert after["lastMeterConsumption"] > late["lastMeterConsumption"]  # the register never resets


def test_overrides_keep_explicit_nulls_and_reject_typos():
    meter = MeterState(FakeHome(id="h", power_deal=False, phase_values="every_frame", phases=1))
    frame = meter.measurement({"power": 512.0, "signalStrength": None})
    assert frame["power"] == 512.0
    assert frame["signalStrength"] is None
    assert frame["accumulatedCost"] is None  # no Tibber power deal
    assert frame["voltagePhase1"] is not None
    assert frame["voltagePhase2"] is None  # one-phase meter
    assert list(frame) == list(LIVE_FIELDS)
    with pytest.raises(TypeError, match="powr"):
        meter.measurement({"powr": 1.0})
