"""Kafka away: the connector buffers, retries and loses nothing; a full buffer is loud and counted.

These tests stop a broker, so they get one of their own instead of the session's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from connector.app import Connector
from connector.metrics import ConnectorMetrics
from connector.producer import OnFull, ReadingPublisher
from meterstream.devservices.kafka import start_kafka
from meterstream.devservices.process import RunningService, free_port, stop_process_group
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import ConnectorSettings, KafkaSettings, load_settings
from schemas.codec import AvroCodec
from schemas.records import ReadingRecord
from schemas.topics import READINGS
from tests.integration.kafka_helpers import read_all
from tests.services.selection import provider_for

pytestmark = pytest.mark.skipif(
    provider_for("kafka") != "local", reason="stops and restarts a broker: needs local processes"
)


class OwnBroker:
    """A broker on a fixed port whose process the test may stop and start again."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="meterstream-outage-kafka-"))
        self.port = free_port()
        self.service: RunningService | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.service = start_kafka(self.data_dir, port=self.port)

    def stop(self) -> None:
        if self.service is not None:
            stop_process_group(self.service.pid)
            self.service = None


@pytest.fixture(scope="module")
def own_broker() -> Iterator[OwnBroker]:
    broker = OwnBroker()
    broker.start()
    yield broker
    broker.stop()


def _readings(count: int, start_us: int = 1_767_596_400_000_000) -> list[dict[str, object]]:
    return [
        {"meter_id": f"m{i % 5}", "ts": start_us + i * 1_000_000, "power_w": float(i)}
        for i in range(count)
    ]


def test_kafka_down_longer_than_the_message_timeout_loses_nothing(
    own_broker: OwnBroker, tmp_path: Path
) -> None:
    settings = load_settings(
        env_file_paths=(),
        kafka=KafkaSettings(bootstrap_servers=own_broker.bootstrap, topic_prefix="outage."),
    )
    ensure_topics(settings)
    topic = "outage." + READINGS
    csv_file = tmp_path / "readings.csv"
    rows = _readings(1500)
    csv_file.write_text(
        "meter_id,ts,power_w\n"
        + "".join(f"{r['meter_id']},{r['ts']},{r['power_w']}\n" for r in rows)
    )
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": "outage.",
        "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp_path / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
        # librdkafka gives up on a record after 2 s; the connector must produce it again.
        "METERSTREAM_CONNECTOR_MESSAGE_TIMEOUT": "2s",
        # 1,500 readings one second apart at 100x: 15 s of publishing, the outage in the middle.
        "METERSTREAM_REPLAY_SPEED": "100",
    }
    connector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterstream.cli",
            "connector",
            "--source",
            "replay",
            "--replay-path",
            str(csv_file),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)
        own_broker.stop()  # down for 8 s: four times the message timeout
        time.sleep(8)
        own_broker.start()
        _, stderr = connector.communicate(timeout=120)
    finally:
        if connector.poll() is None:
            connector.kill()
    assert connector.returncode == 0, stderr
    assert "published 1,500 readings" in stderr, stderr

    records = read_all(own_broker.bootstrap, topic, expect=1500, timeout_s=60)
    seen = [(r.value["meter_id"], r.value["ts"]) for r in records]
    assert set(seen) == {(r["meter_id"], r["ts"]) for r in rows}, "readings were lost"
    # A record in flight when the broker died may have been written before its ack was lost;
    # producing it again is at-least-once, and every consumer absorbs it by (meter_id, ts).
    assert len(seen) - len(set(seen)) <= 50


class _LiveBurst:
    """A live source (drops when full) that produces a burst while Kafka is unreachable."""

    name = "burst"
    on_full: OnFull = "drop"

    def __init__(self, count: int) -> None:
        self.count = count

    def ready(self) -> bool:
        return True

    def summary(self) -> str:
        return f"{self.count} readings"

    async def batches(self) -> AsyncIterator[list[ReadingRecord]]:
        now = int(time.time() * 1_000_000)
        batch: list[ReadingRecord] = []
        for i in range(self.count):
            batch.append(
                {
                    "meter_id": "m",
                    "source": "test",
                    "ts": now - 10_000_000 + i,
                    "received_at": now,
                    "power_w": 1.0,
                }
            )
        yield batch


def test_a_full_buffer_drops_loudly_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: every record waits in the buffer
    kafka = KafkaSettings(bootstrap_servers=dead)
    connector_settings = ConnectorSettings(buffer_max_readings=1000)
    metrics = ConnectorMetrics()
    publisher = ReadingPublisher(
        kafka,
        connector_settings,
        AvroCodec.for_schema("Reading"),
        "t",
        metrics,
        on_full="drop",
        **{"socket.connection.setup.timeout.ms": 1000, "log_level": 0},
    )
    app = Connector(_LiveBurst(1500), publisher, metrics, max_skew_s=300, dedupe_memory=2000)
    with caplog.at_level(logging.ERROR):
        # The clean stop waits for Kafka; here it never comes, so bound the flush.
        import connector.app as app_module

        original = app_module.FLUSH_TIMEOUT_S
        app_module.FLUSH_TIMEOUT_S = 1.0
        try:
            stats = asyncio.run(app.run())
        finally:
            app_module.FLUSH_TIMEOUT_S = original
    assert stats.received == 1500
    assert stats.queued == 1000
    dropped = metrics.dropped.labels("m", "buffer_full")._value.get()
    assert dropped == 500
    assert any(
        "buffer FULL" in r.getMessage() and "DROPPED" in r.getMessage() for r in caplog.records
    )
    assert any("still not delivered" in r.getMessage() for r in caplog.records)
