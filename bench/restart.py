"""Time from a worker's SIGKILL to its first new score, with many meters.

1. Publish ``--minutes`` of readings for ``--meters`` meters; a worker scores them all.
2. SIGKILL the worker; publish two more minutes of readings (max speed).
3. Restart it (same data dir and instance id: no clean-stop marker, so its tables are wiped and
   restored from the changelogs) and measure kill -> the first score of a window from step 2.

    python -m bench.restart --meters 1000 --minutes 10
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench._broker import broker
from bench.worker import _committed, _publish, fresh_run, record_count, start_worker
from schemas.codec import AvroCodec
from schemas.topics import READINGS, SCORES

_START_US = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z, as bench.worker publishes


def _newest_window(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-restart"})
    codec = AvroCodec.for_schema("AnomalyScore")
    newest = -1
    for partition in range(partitions):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition))
        if high == 0:
            continue
        consumer.assign([TopicPartition(topic, partition, max(0, high - 50))])
        for message in consumer.consume(50, timeout=2.0):
            if message.error() is None:
                newest = max(newest, codec.decode(message.value())["window_start"])
    consumer.close()
    return newest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--delete-data-dir",
        action="store_true",
        help="delete the worker's data dir before the restart (restore from changelogs only)",
    )
    args = parser.parse_args()
    with broker(heap="1g") as bootstrap:
        settings, data_dir, env = fresh_run(bootstrap, "br")
        prefix, app_id = settings.kafka.topic_prefix, settings.worker.app_id
        publisher = _publish(env, args.meters, args.minutes, "max")
        publisher.communicate()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = prefix + READINGS
        total = record_count(bootstrap, topic, settings.kafka.partitions)
        worker = start_worker(env, "meterstream-bench-restart-first.log")
        while _committed(admin, app_id, topic, settings.kafka.partitions) < total * 0.99:
            time.sleep(1)
        time.sleep(5)
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        worker.wait()
        more = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meterstream.cli",
                "connector",
                "--source",
                "simulate",
                "--sim-meters",
                str(args.meters),
                "--sim-start",
                _iso(_START_US + int(args.minutes * 60 * 1_000_000)),
                "--sim-duration",
                "2m",
                "--sim-speed",
                "max",
                "--sim-anomalies",
                "none",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        more.communicate()  # two new minutes right after the first part
        if args.delete_data_dir:  # the worker's tables; the connector keeps its own folder
            for child in data_dir.iterdir():
                if child.name != "connector":
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        published = time.monotonic() - killed
        worker = start_worker(env, "meterstream-bench-restart-second.log")
        boundary = _START_US + int(args.minutes * 60 * 1_000_000)
        first_new = None
        try:
            while time.monotonic() - killed < 600:
                if (
                    _newest_window(bootstrap, prefix + SCORES, settings.kafka.partitions)
                    >= boundary
                ):
                    first_new = time.monotonic() - killed
                    break
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"restart ({'data dir deleted' if args.delete_data_dir else 'data dir kept'}): "
        f"{args.meters:,} meters, SIGKILL -> first new score "
        f"{first_new:.1f} s (of which {published:.1f} s publishing the new readings)"
        if first_new is not None
        else "restart: no new score within 600 s"
    )


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat()


if __name__ == "__main__":
    main()
