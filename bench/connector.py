"""Connector throughput: the simulator at full speed into a real broker, as `meterstream connector` runs.

Measures readings per second from the first simulated reading to the last delivery report
(every record acknowledged by Kafka with acks=all, idempotence, zstd, murmur2 partitioning),
through the same Connector, validation, de-duplication, Avro encoding and producer as the CLI.
Uses METERSTREAM_KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a local Kafka 4 broker
(which then shares the 2 cores with the benchmark: the figure includes that contention).

    python bench/connector.py            # 100 meters, about 1M readings
    python bench/connector.py --smoke    # a few thousand readings, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

from bench._broker import broker
from connector.app import Connector
from connector.clock import SystemClock
from connector.metrics import ConnectorMetrics
from connector.producer import ReadingPublisher
from connector.sources.simulate import SimulatedSource
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import KafkaSettings, SimSettings, load_settings
from schemas.codec import AvroCodec
from schemas.topics import READINGS


def run(bootstrap: str, meters: int, hours: float, interval: float) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = load_settings(
        env_file_paths=(),
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=4),
        sim=SimSettings(
            meters=meters,
            interval=interval,
            speed="max",
            start=datetime(2026, 1, 5, tzinfo=UTC),
            duration=hours * 3600,
            seed=1,
        ),
    )
    ensure_topics(settings)
    topic = prefix + READINGS
    metrics = ConnectorMetrics()
    clock = SystemClock()
    source = SimulatedSource(settings.sim, clock)
    publisher = ReadingPublisher(
        settings.kafka,
        settings.connector,
        AvroCodec.for_schema("Reading"),
        topic,
        metrics,
        on_full="wait",
    )
    connector = Connector(source, publisher, metrics, max_skew_s=300, dedupe_memory=64, clock=clock)
    started = time.perf_counter()
    cpu_started = time.process_time()
    stats = asyncio.run(connector.run())
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "readings": stats.received,
        "delivered": publisher.delivered,
        "seconds": elapsed,
        "per_second": publisher.delivered / elapsed,
        "cpu_seconds": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--hours", type=float, default=5.6, help="event time to simulate")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args = parser.parse_args()
    if args.smoke:
        args.meters, args.hours = 5, 0.25
    with broker() as bootstrap:
        result = run(bootstrap, args.meters, args.hours, args.interval)
    print(
        f"connector: {result['delivered']:,.0f} of {result['readings']:,.0f} readings delivered "
        f"in {result['seconds']:.1f} s = {result['per_second']:,.0f} readings/s "
        f"({args.meters} meters, {args.interval:g} s interval, acks=all, idempotent, zstd; "
        f"benchmark process CPU {result['cpu_seconds']:.1f} s)"
    )


if __name__ == "__main__":
    main()
