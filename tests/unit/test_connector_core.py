"""The connector's pure parts: Tibber payloads, validation, de-duplication, pacing."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.dedupe import Deduplicator
from connector.pacing import Pacer
from connector.sources.replay import ReplayError, _coerce, detect_format
from connector.sources.simulate import anomaly_config
from connector.tibber.api import (
    LIVE_SUBSCRIPTION,
    classify,
    close_code_of,
    parse_discovery,
    user_agent,
)
from connector.tibber.errors import AuthRejected, RateLimited, SocketLost
from connector.tibber.payload import FIELD_MAP, PayloadError, parse_timestamp, to_reading
from connector.validate import DropReason, check_reading
from schemas.codec import AvroCodec
from schemas.timestamps import datetime_to_micros
from tests.support.virtual_time import run_virtual

OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(
    ("text", "expected_utc", "offset"),
    [
        ("2021-03-14T01:43:37.5+01:00", datetime(2021, 3, 14, 0, 43, 37, 500_000, tzinfo=UTC), 60),
        ("2021-03-14T01:43:37+01:00", datetime(2021, 3, 14, 0, 43, 37, tzinfo=UTC), 60),
        (
            "2021-03-14T01:43:37.123456789+0100",
            datetime(2021, 3, 14, 0, 43, 37, 123_456, tzinfo=UTC),
            60,
        ),
        ("2026-06-01T12:00:00.04-03:30", datetime(2026, 6, 1, 15, 30, 0, 40_000, tzinfo=UTC), -210),
        ("2026-06-01T12:00:00Z", datetime(2026, 6, 1, 12, tzinfo=UTC), 0),
    ],
)
def test_timestamps_with_any_fraction_and_offset(
    text: str, expected_utc: datetime, offset: int
) -> None:
    assert parse_timestamp(text) == (datetime_to_micros(expected_utc), offset)


def test_both_halves_of_the_repeated_autumn_hour_stay_apart() -> None:
    first = parse_timestamp("2026-10-25T02:30:00+02:00")
    second = parse_timestamp("2026-10-25T02:30:00+01:00")
    assert second[0] - first[0] == 3_600_000_000
    assert (first[1], second[1]) == (120, 60)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(0, 6),
)
def test_any_local_time_in_oslo_round_trips(moment: datetime, digits: int) -> None:
    aware = moment.replace(tzinfo=OSLO)
    offset = aware.utcoffset()
    assert offset is not None
    fraction = f".{aware.microsecond:06d}"[: digits + 1] if digits else ""
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds() // 60))
    text = (
        aware.strftime("%Y-%m-%dT%H:%M:%S")
        + fraction
        + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    )
    ts, reported = parse_timestamp(text)
    truncated = aware.replace(microsecond=int((fraction[1:] or "0").ljust(6, "0")))
    assert ts == datetime_to_micros(truncated.astimezone(UTC))
    assert reported == minutes * (1 if sign == "+" else -1)


@pytest.mark.parametrize("bad", ["yesterday", "2021-03-14 01:43", "2021-02-30T00:00:00+01:00", ""])
def test_bad_timestamps_are_payload_errors(bad: str) -> None:
    with pytest.raises(PayloadError):
        parse_timestamp(bad)


def test_a_full_payload_maps_every_field_and_encodes() -> None:
    measurement = {name: 1.5 for name in FIELD_MAP}
    measurement.update(timestamp="2026-01-05T07:00:00+01:00", currency="NOK", signalStrength=-71)
    reading = to_reading(measurement, meter_id="home", received_at_us=1)
    assert reading["currency"] == "NOK"
    assert reading["signal_strength"] == -71
    assert reading["voltage_l3_v"] == 1.5
    AvroCodec.for_schema("Reading").encode(reading)  # every key is a schema field


def test_nulls_stay_null_and_deprecated_currents_fill_in() -> None:
    reading = to_reading(
        {
            "timestamp": "2026-01-05T07:00:00+01:00",
            "power": 5,
            "currentL1": None,
            "currentPhase1": 2.0,
            "voltagePhase2": None,
            "powerFactor": float("nan"),
        },
        meter_id="home",
        received_at_us=1,
    )
    assert reading["current_l1_a"] == 2.0
    assert reading["voltage_l2_v"] is None
    assert reading["power_factor"] is None  # not finite: dropped to null
    assert reading["power_w"] == 5.0


def test_a_null_power_survives_mapping_and_is_dropped_by_validation() -> None:
    reading = to_reading(
        {"timestamp": "2026-01-05T07:00:00+01:00", "power": None}, meter_id="h", received_at_us=0
    )
    assert check_reading(reading, max_skew_us=1) is DropReason.POWER_MISSING


def test_live_subscription_selects_every_mapped_field() -> None:
    for name in FIELD_MAP:
        assert f" {name} " in LIVE_SUBSCRIPTION or f" {name}" in LIVE_SUBSCRIPTION


@pytest.mark.parametrize(
    ("power", "ts", "reason"),
    [
        (None, 0, DropReason.POWER_MISSING),
        (math.inf, 0, DropReason.POWER_NOT_FINITE),
        (math.nan, 0, DropReason.POWER_NOT_FINITE),
        (1.0, 301_000_000, DropReason.FUTURE_TIMESTAMP),
        (1.0, 299_000_000, None),
        (0.0, -(10**12), None),
    ],
)
def test_validation(power: float | None, ts: int, reason: DropReason | None) -> None:
    assert (
        check_reading({"ts": ts, "received_at": 0, "power_w": power}, max_skew_us=300_000_000)
        == reason
    )


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30)), max_size=200))
def test_dedupe_passes_each_key_once_within_memory(events: list[tuple[str, int]]) -> None:
    seen = Deduplicator(memory=1000)
    passed = [e for e in events if seen.first_time(*e)]
    assert len(passed) == len(set(events))
    assert set(passed) == set(events)


def test_anomaly_config_parsing() -> None:
    assert anomaly_config("none").enabled_kinds == ()
    assert set(anomaly_config("all").enabled_kinds) == {
        "ev_unusual_hour",
        "stuck_appliance",
        "standby_creep",
        "phase_imbalance",
        "voltage_sag",
    }
    assert anomaly_config("voltage_sag, ev_unusual_hour").enabled_kinds == (
        "ev_unusual_hour",
        "voltage_sag",
    )
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        anomaly_config("solar_flare")


def test_pacer_follows_event_time_at_the_given_speed() -> None:
    async def go() -> list[float]:
        loop = asyncio.get_running_loop()

        class Clock:
            def monotonic(self) -> float:
                return loop.time()

            def wall(self) -> float:
                return loop.time()

            async def sleep(self, seconds: float) -> None:
                await asyncio.sleep(seconds)

        pacer = Pacer(Clock(), speed=10.0)
        times = []
        for ts in (0, 10_000_000, 20_000_000, 20_000_000, 60_000_000):
            await pacer.wait_for(ts)
            times.append(loop.time())
        return times

    times, _ = run_virtual(go())
    assert times == [0.0, 1.0, 2.0, 2.0, 6.0]


def test_replay_rows_are_coerced_to_readings() -> None:
    row = {
        "meter_id": "",
        "ts": "2026-01-05T07:00:00.25+01:00",
        "power_w": "12.5",
        "voltage_l1_v": "nan",
        "signal_strength": "-70",
        "unknown_column": "x",
    }
    reading = _coerce(row, "house", "file.csv:2")
    assert reading["meter_id"] == "house"
    assert reading["ts_offset_minutes"] == 60
    assert reading["voltage_l1_v"] is None
    assert reading["signal_strength"] == -70
    assert "unknown_column" not in reading
    with pytest.raises(ReplayError, match=r"file\.csv:3"):
        _coerce({"ts": "1", "power_w": ""}, "house", "file.csv:3")
    assert [detect_format(p) for p in ("a.csv", "a.csv.gz", "b.jsonl", "c.parquet", "lake/")] == [
        "csv",
        "csv",
        "jsonl",
        "parquet",
        "parquet",
    ]


class _Closed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__("closed")
        self.rcvd = type("Close", (), {"code": code})()


def _wrapped(inner: BaseException) -> Exception:
    try:
        raise RuntimeError("transport failed") from inner
    except RuntimeError as exc:
        return exc


def test_close_codes_are_found_along_the_cause_chain_and_classified() -> None:
    assert close_code_of(_wrapped(_Closed(4403))) == 4403
    assert isinstance(classify(_wrapped(_Closed(4403)), "socket"), AuthRejected)
    assert isinstance(classify(_wrapped(_Closed(4429)), "socket"), RateLimited)
    lost = classify(_wrapped(_Closed(1001)), "socket")
    assert isinstance(lost, SocketLost)
    assert lost.close_code == 1001
    assert close_code_of(RuntimeError("no cause")) is None


def test_discovery_and_user_agent() -> None:
    discovery = parse_discovery(
        {
            "viewer": {
                "websocketSubscriptionUrl": "wss://x",
                "homes": [
                    {
                        "id": "h1",
                        "appNickname": None,
                        "timeZone": "Europe/Oslo",
                        "features": {"realTimeConsumptionEnabled": True},
                    },
                    {"id": "h2", "features": None},
                ],
            }
        }
    )
    assert discovery.websocket_url == "wss://x"
    assert [(h.id, h.real_time_enabled) for h in discovery.homes] == [("h1", True), ("h2", None)]
    agent = user_agent()
    assert agent.startswith("meterstream/")
    assert agent.isascii()
    assert len(agent) <= 255
