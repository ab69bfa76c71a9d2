"""Prometheus metrics of the worker (prefix ``meterstream_worker_``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        p = "meterstream_worker_"
        r = self.registry
        self.records = Counter(p + "records", "Records consumed, by kind.", ["kind"], registry=r)
        self.windows_scored = Counter(p + "windows_scored", "Windows scored.", registry=r)
        self.anomalies = Counter(p + "anomalies", "Windows flagged as anomalous.", registry=r)
        self.late_readings = Counter(
            p + "late_readings", "Readings for windows already closed (dropped).", registry=r
        )
        self.duplicate_readings = Counter(
            p + "duplicate_readings",
            "Readings whose (meter, ts) was already in the window.",
            registry=r,
        )
        self.idle_flushes = Counter(
            p + "idle_flushes",
            "Windows closed by ticks because their meter went silent.",
            registry=r,
        )
        self.dead_letters = Counter(
            p + "dead_letters", "Records sent to the DLQ, by error type.", ["error"], registry=r
        )
        self.replayed_skipped = Counter(
            p + "replayed_skipped",
            "Records skipped because the state had already applied them (after a restart).",
            registry=r,
        )
        self.seeks = Counter(
            p + "seeks",
            "Seeks back to the state's position (its changelog was behind).",
            registry=r,
        )
        self.gaps = Counter(
            p + "offset_gaps",
            "Records the state expected but Kafka no longer has (retention).",
            registry=r,
        )
        self.resent = Counter(
            p + "outbox_resent", "Scores re-sent from outboxes after assignment.", registry=r
        )
        self.snapshots = Counter(p + "snapshots", "Model snapshots written.", registry=r)
        self.snapshot_bytes = Histogram(
            p + "snapshot_bytes",
            "Compressed size of a model snapshot.",
            buckets=(16e3, 32e3, 64e3, 128e3, 256e3, 512e3, 1e6, 2e6),
            registry=r,
        )
        self.model_restores = Counter(
            p + "model_restores", "Models rebuilt from a snapshot.", registry=r
        )
        self.model_resets = Counter(
            p + "model_resets",
            "Models started afresh, by reason (loud: see the log).",
            ["reason"],
            registry=r,
        )
        self.state_bytes = Histogram(
            p + "state_bytes",
            "Size of a meter's hot state value (open windows, counters) when written.",
            buckets=(256, 512, 1024, 2048, 4096, 8192, 16384, 65536),
            registry=r,
        )
        self.history_bytes = Histogram(
            p + "history_bytes",
            "Size of a meter's history (vectors since the previous snapshot, outbox) when "
            "written, once per closed window.",
            buckets=(1024, 2048, 4096, 8192, 16384, 32768, 65536),
            registry=r,
        )
        self.changelog_bytes = Counter(
            p + "changelog_bytes",
            "Bytes written to the state tables (uncompressed values).",
            registry=r,
        )
        self.scoring_seconds = Histogram(
            p + "scoring_seconds",
            "Features plus model time per window.",
            buckets=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3),
            registry=r,
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds",
            "Processing time of one batch.",
            buckets=(1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.durable_wait_seconds = Histogram(
            p + "durable_wait_seconds",
            "Time a state flush waited for earlier snapshot writes to be acknowledged by Kafka.",
            buckets=(1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.lag = Gauge(
            p + "consumer_lag",
            "Records behind the end of each partition.",
            ["partition"],
            registry=r,
        )
        self.assigned = Gauge(p + "assigned_partitions", "Partitions this worker owns.", registry=r)
