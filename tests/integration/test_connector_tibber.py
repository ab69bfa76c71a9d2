"""The Tibber source end to end: a protocol-faithful fake Tibber, the real connector, real Kafka.

Truth is what the fake logged: every frame it sent on each socket after a subscription started.
Each of those must be in Kafka exactly once, with the right UTC time, whatever faults happened
in between (dropped sockets, server restarts, errors-then-complete, duplicated frames, a DST day).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterstream.devservices.process import free_port
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings
from schemas.timestamps import datetime_to_micros
from schemas.topics import READINGS
from tests.fakes.homes import HOME_OSLO, HOME_STOCKHOLM
from tests.fakes.threaded import ThreadedFakeTibber
from tests.integration.kafka_helpers import read_all

GOOD_TOKEN = "good-token"


class RunningConnector:
    def __init__(
        self, settings: Settings, fake: ThreadedFakeTibber, tmp_path: Path, token: str, **extra: str
    ) -> None:
        self.metrics_port = free_port()
        self.log_path = tmp_path / "connector.log"
        env = {
            **os.environ,
            "METERSTREAM_SOURCE": "tibber",
            "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "METERSTREAM_TIBBER_API_URL": fake.http_url,
            "METERSTREAM_TIBBER_TOKEN": token,
            "METERSTREAM_TIBBER_RECONNECT_MIN": "0.2",
            "METERSTREAM_TIBBER_RECONNECT_MAX": "1",
            "METERSTREAM_TIBBER_SOCKETS_PER_HOUR": "20",
            "METERSTREAM_TIBBER_WATCHDOG_INTERVAL": "0.5",
            "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp_path / "connector"),
            "METERSTREAM_METRICS_PORT": str(self.metrics_port),
            "METERSTREAM_METRICS_HOST": "127.0.0.1",
            "METERSTREAM_LOG_LEVEL": "INFO",
            **extra,
        }
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meterstream.cli", "connector"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2
            ) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _expected_utc(local_iso: str) -> int:
    """The UTC micros of Tibber's local timestamp, computed independently of the connector."""
    text = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), local_iso)
    return datetime_to_micros(datetime.fromisoformat(text).astimezone(UTC))


def test_every_frame_sent_after_subscription_arrives_exactly_once(
    settings_factory: Callable[..., Settings], fake_tibber: ThreadedFakeTibber, tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    connector = RunningConnector(settings, fake_tibber, tmp_path, GOOD_TOKEN)
    try:
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        # The spring-forward night in Oslo: 01:59 local +01:00, then 03:00 local +02:00.
        fake_tibber.emit_series(
            HOME_OSLO, datetime(2026, 3, 29, 0, 58, tzinfo=UTC), 45, 2.0, tz="Europe/Oslo"
        )
        fake_tibber.emit_series(HOME_STOCKHOLM, datetime(2026, 3, 29, 0, 58, tzinfo=UTC), 20, 3.0)
        fake_tibber.duplicate_next_frames(5)
        fake_tibber.emit_series(HOME_OSLO, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), 5, 2.0)

        fake_tibber.drop_all()  # TCP gone without a close frame
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        fake_tibber.emit_series(HOME_OSLO, datetime(2026, 3, 29, 2, 10, tzinfo=UTC), 10, 2.0)

        fake_tibber.close_all(1001, "Going away")  # a Tibber restart
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        fake_tibber.emit_series(HOME_STOCKHOLM, datetime(2026, 3, 29, 2, 20, tzinfo=UTC), 10, 2.0)

        fake_tibber.error_then_complete(HOME_OSLO)  # backend restart: this home only
        fake_tibber.wait_for_subscriptions(1, home_id=HOME_OSLO, timeout=30)
        fake_tibber.emit_series(HOME_OSLO, datetime(2026, 3, 29, 2, 30, tzinfo=UTC), 10, 2.0)
        # The autumn DST night: 02:30 local happens twice, +02:00 then +01:00.
        fake_tibber.emit_series(
            HOME_OSLO, datetime(2026, 10, 25, 0, 20, tzinfo=UTC), 40, 60.0, tz="Europe/Oslo"
        )
        time.sleep(1)
    finally:
        code = connector.stop()
    output = connector.output()
    assert code == 0, output

    log = fake_tibber.log
    sent: dict[tuple[str, int], str] = {}
    for frame in log.frames(kind="next"):
        if not (frame.payload.get("data") or {}).get("liveMeasurement"):
            continue  # the `next` that carries errors before `complete`
        measurement = frame.payload["data"]["liveMeasurement"]
        sent[(frame.home_id, _expected_utc(measurement["timestamp"]))] = measurement["timestamp"]
    assert len(log.sockets_opened) >= 3
    assert (
        len(sent) == 45 + 20 + 5 + 10 + 10 + 10 + 40
    )  # every emitted frame reached a subscription

    records = read_all(
        settings.kafka.bootstrap_servers, settings.kafka.topic_prefix + READINGS, expect=len(sent)
    )
    got = [(r.value["meter_id"], r.value["ts"]) for r in records]
    assert len(got) == len(set(got)), "a frame reached Kafka twice"
    assert set(got) == set(sent), (
        f"missing: {sorted(set(sent) - set(got))[:5]} extra: {sorted(set(got) - set(sent))[:5]}"
    )
    offsets = {r.value["ts_offset_minutes"] for r in records if r.value["meter_id"] == HOME_OSLO}
    assert offsets == {60, 120}
    assert GOOD_TOKEN not in output


def test_user_agent_protocol_and_health(
    settings_factory: Callable[..., Settings], fake_tibber: ThreadedFakeTibber, tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    connector = RunningConnector(
        settings, fake_tibber, tmp_path, GOOD_TOKEN, METERSTREAM_TIBBER_STALE_AFTER="2s"
    )
    try:
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        assert connector.get("/healthz")[0] == 200
        ready = False
        for _ in range(20):  # keep the homes fresh until /readyz agrees
            fake_tibber.emit(HOME_OSLO)
            fake_tibber.emit(HOME_STOCKHOLM)
            silent_since = time.monotonic()
            if connector.get("/readyz")[0] == 200:
                ready = True
                break
            time.sleep(0.3)
        assert ready, "/readyz never turned ready"
        status, metrics = connector.get("/metrics")
        assert status == 200
        assert "meterstream_connector_readings_received_total" in metrics
        # Silence: after stale_after (2 s) plus one watchdog check (0.5 s) the home is resubscribed.
        before = fake_tibber.log.subscriptions_started(HOME_OSLO)
        _wait(
            lambda: fake_tibber.log.subscriptions_started(HOME_OSLO) > before,
            10,
            "a resubscription",
        )
        reaction = time.monotonic() - silent_since
        assert reaction <= 2.0 + 0.5 + 1.0, reaction  # + 1 s for scheduling on a busy machine
        assert connector.get("/readyz")[0] == 503
        assert len(fake_tibber.log.sockets_opened) == 1  # staleness never costs a socket
    finally:
        assert connector.stop() == 0
    log = fake_tibber.log
    agents = set(log.user_agents_http) | set(log.user_agents_ws)
    assert agents, "no User-Agent seen"
    for agent in agents:
        assert re.fullmatch(r"meterstream/\S+ gql/\S+ \(python/3\.\d+\.\d+\)", agent or ""), agent
    socket = next(iter(log.sockets.values()))
    assert socket.protocol == "graphql-transport-ws"
    assert socket.offered_protocols == ["graphql-transport-ws"]


def test_an_invalid_token_ends_the_process_quickly_and_is_never_logged(
    settings_factory: Callable[..., Settings], fake_tibber: ThreadedFakeTibber, tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    bad_token = "not-a-valid-token-4f1c9e"
    started = time.monotonic()
    connector = RunningConnector(
        settings, fake_tibber, tmp_path, bad_token, METERSTREAM_LOG_LEVEL="DEBUG"
    )
    code = connector.process.wait(timeout=30)
    elapsed = time.monotonic() - started
    output = connector.output()
    assert code == 78, output
    assert elapsed < 15, elapsed
    assert bad_token not in output
    assert "rejected" in output
    # Restarted by a supervisor, it refuses at once without asking Tibber again.
    requests_before = fake_tibber.log.http_request_count
    again = RunningConnector(settings, fake_tibber, tmp_path, bad_token)
    assert again.process.wait(timeout=30) == 78
    assert fake_tibber.log.http_request_count == requests_before
    assert bad_token not in again.output()


def test_a_token_file_is_read_again_on_reconnect(
    settings_factory: Callable[..., Settings], fake_tibber: ThreadedFakeTibber, tmp_path: Path
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    token_file = tmp_path / "token"
    token_file.write_text(GOOD_TOKEN + "\n")
    fake_tibber.add_token("rotated-token-123")
    connector = RunningConnector(
        settings, fake_tibber, tmp_path, "", METERSTREAM_TIBBER_TOKEN_FILE=str(token_file)
    )
    try:
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        token_file.write_text("rotated-token-123\n")
        fake_tibber.invalidate_token(GOOD_TOKEN, close_sockets=False)
        fake_tibber.drop_all()
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        inits = fake_tibber.log.connection_inits
        assert inits[-1].token_valid
    finally:
        assert connector.stop() == 0
    assert "rotated-token-123" not in connector.output()


@pytest.mark.parametrize("status", [429])
def test_http_rate_limit_backs_off_long(
    settings_factory: Callable[..., Settings],
    fake_tibber: ThreadedFakeTibber,
    tmp_path: Path,
    status: int,
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    fake_tibber.fail_http(status, times=1)
    connector = RunningConnector(
        settings, fake_tibber, tmp_path, GOOD_TOKEN, METERSTREAM_TIBBER_RATE_LIMITED_BACKOFF="3s"
    )
    try:
        started = time.monotonic()
        fake_tibber.wait_for_subscriptions(2, timeout=30)
        assert time.monotonic() - started >= 2.5  # waited the long backoff, not the 0.2 s minimum
    finally:
        assert connector.stop() == 0
    assert "rate limiting" in connector.output()
