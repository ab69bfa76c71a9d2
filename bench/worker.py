"""Worker throughput and end-to-end latency against a real broker.

Throughput: the simulator first publishes every reading (at full speed), then one
`meterstream worker` process starts and scores them; the rate is the slope of the worker's
committed offsets between 10 % and 90 % of the input (so start-up and the final idle flush are
left out). Memory is the worker's peak RSS.

Latency (``--latency``): the worker runs while the connector publishes at a multiple of real
time; for every score, latency = broker append time of the score minus broker append time of the
reading that closed its window (the first reading of that meter at or after window end plus
lateness), p50 and p99.

    python -m bench.worker                       # 1, 100 and 10,000 meters, then latency
    python -m bench.worker --meters 100 --minutes 30
    python -m bench.worker --smoke               # a tiny run for CI
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from bench._broker import broker
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import KafkaSettings, Settings, WorkerSettings, load_settings
from schemas.codec import AvroCodec
from schemas.topics import READINGS, SCORES, is_tick

WORKER_ENV = {
    "METERSTREAM_WORKER_WEB_PORT": "0",
    "METERSTREAM_WORKER_SESSION_TIMEOUT": "10s",
    "METERSTREAM_LOG_LEVEL": "WARNING",
}


def _env(bootstrap: str, prefix: str, app_id: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **WORKER_ENV,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": prefix,
        "METERSTREAM_WORKER_APP_ID": app_id,
        "METERSTREAM_WORKER_DATA_DIR": str(data_dir),
        "METERSTREAM_WORKER_INSTANCE_ID": app_id + "-1",
        "METERSTREAM_CONNECTOR_DATA_DIR": str(data_dir / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
    }


def _publish(env: dict[str, str], meters: int, minutes: float, speed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterstream.cli",
            "connector",
            "--source",
            "simulate",
            "--sim-meters",
            str(meters),
            "--sim-start",
            "2026-01-05T00:00:00+00:00",
            "--sim-duration",
            f"{minutes}m",
            "--sim-speed",
            speed,
            "--sim-anomalies",
            "none",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_worker(env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    """A worker process whose log goes to a file in the temp dir.

    Never an unread pipe: once its buffer is full the worker blocks on its next log line.
    """
    with (Path(tempfile.gettempdir()) / log_name).open("w") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "meterstream.cli", "worker"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def fresh_run(bootstrap: str, tag: str) -> tuple[Settings, Path, dict[str, str]]:
    """Topics, app id, data dir and child-process environment of one benchmark run."""
    prefix, app_id = f"{tag}{uuid.uuid4().hex[:6]}.", f"{tag}{uuid.uuid4().hex[:6]}"
    settings = load_settings(
        env_file_paths=(),
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
        worker=WorkerSettings(app_id=app_id),
    )
    ensure_topics(settings)
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{tag}-"))
    return settings, data_dir, _env(bootstrap, prefix, app_id, data_dir)


def record_count(bootstrap: str, topic: str, partitions: int) -> int:
    """Records on a topic: the sum of its partitions' high watermarks."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-count"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(partitions)
        )
    finally:
        consumer.close()


def _committed(admin: AdminClient, group: str, topic: str, partitions: int) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions

    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    try:
        result = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    except KafkaException:  # e.g. the group coordinator is still loading: nothing committed yet
        return 0
    return sum(max(tp.offset, 0) for tp in result.topic_partitions)


def _rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def throughput(bootstrap: str, meters: int, minutes: float) -> dict[str, float]:
    settings, data_dir, env = fresh_run(bootstrap, "bw")
    prefix, app_id = settings.kafka.topic_prefix, settings.worker.app_id
    publisher = _publish(env, meters, minutes, "max")
    _, stderr = publisher.communicate()
    assert publisher.returncode == 0, stderr
    topic = prefix + READINGS
    admin = AdminClient({"bootstrap.servers": bootstrap})
    total = record_count(bootstrap, topic, settings.kafka.partitions)
    worker = start_worker(env, f"meterstream-bench-worker-{meters}.log")
    samples: list[tuple[float, int]] = []
    peak_rss = 0.0
    started = time.monotonic()
    try:
        while time.monotonic() - started < 1800:
            time.sleep(0.5)
            done = _committed(admin, app_id, topic, settings.kafka.partitions)
            samples.append((time.monotonic(), done))
            peak_rss = max(peak_rss, _rss_mb(worker.pid))
            if done >= total * 0.98:
                break
            print(f"  {meters} meters: {done:,}/{total:,} records", end="\r", file=sys.stderr)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    # The samples around the 10 % and 90 % marks (never the same sample, even for a fast run).
    low = ([s for s in samples if s[1] < total * 0.1] or samples[:1])[-1]
    high = next((s for s in samples if s[1] >= total * 0.9), samples[-1])
    rate = (high[1] - low[1]) / max(high[0] - low[0], 1e-9)
    return {"meters": meters, "records": total, "per_second": rate, "peak_rss_mb": peak_rss}


def latency(bootstrap: str, meters: int, minutes: float, speed: str) -> dict[str, float]:
    settings, data_dir, env = fresh_run(bootstrap, "bl")
    prefix = settings.kafka.topic_prefix
    worker = start_worker(env, "meterstream-bench-worker-latency.log")
    time.sleep(8)  # join the group before the readings flow
    publisher = _publish(env, meters, minutes, speed)
    publisher.communicate()
    time.sleep(20)
    worker.terminate()
    worker.wait(timeout=60)
    shutil.rmtree(data_dir, ignore_errors=True)
    # append times of every reading, per meter, sorted by ts
    readings_codec = AvroCodec.for_schema("Reading")
    scores_codec = AvroCodec.for_schema("AnomalyScore")
    readings: dict[str, list[tuple[int, int]]] = {}
    for message in _all(bootstrap, prefix + READINGS, settings.kafka.partitions):
        if is_tick(message.headers()):
            continue
        record = readings_codec.decode(message.value())
        readings.setdefault(record["meter_id"], []).append((record["ts"], message.timestamp()[1]))
    for series in readings.values():
        series.sort()
    lateness_us = int(WorkerSettings().lateness * 1_000_000)
    delays = []
    for message in _all(bootstrap, prefix + SCORES, settings.kafka.partitions):
        score = scores_codec.decode(message.value())
        boundary = score["window_end"] + lateness_us
        closing = next((a for ts, a in readings.get(score["meter_id"], []) if ts >= boundary), None)
        if closing is not None:  # windows closed by an idle tick have no closing reading
            delays.append(message.timestamp()[1] - closing)
    delays.sort()
    return {
        "scores": len(delays),
        "p50_ms": statistics.median(delays) if delays else float("nan"),
        "p99_ms": delays[int(0.99 * (len(delays) - 1))] if delays else float("nan"),
    }


def _all(bootstrap: str, topic: str, partitions: int) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-latency-reader"})
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(partitions)
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in ends if ends[p] > 0])
    out = []
    remaining = {p for p, e in ends.items() if e > 0}
    while remaining:
        for message in consumer.consume(5000, timeout=1.0):
            if message.error() is None:
                out.append(message)
                if message.offset() + 1 >= ends[message.partition()]:
                    remaining.discard(message.partition())
    consumer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, nargs="*", default=[1, 100, 10_000])
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="*",
        default=[6000, 60, 5],
        help="event time per meter count (same order as --meters)",
    )
    parser.add_argument("--latency", action="store_true", help="only the live latency run")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    with broker(heap="1g") as bootstrap:
        if args.smoke:
            result = throughput(bootstrap, 3, 10)
            print(
                f"worker (smoke): {result['records']:,} records, {result['per_second']:,.0f} records/s"
            )
            return
        if not args.latency:
            for meters, minutes in zip(args.meters, args.minutes, strict=False):
                result = throughput(bootstrap, meters, minutes)
                print(
                    f"worker: {meters:>6,} meters, {result['records']:>10,} records: "
                    f"{result['per_second']:>8,.0f} records/s, peak RSS {result['peak_rss_mb']:,.0f} MB"
                )
        result = latency(bootstrap, 100, 20, "20")
        print(
            f"worker latency (100 meters at 20x real time): {result['scores']:,} scores, "
            f"reading-to-score p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms"
        )


if __name__ == "__main__":
    main()
