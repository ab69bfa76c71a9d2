"""Prometheus metrics of the sinks (prefix ``meterstream_sink_``, label ``sink``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    def __init__(self, sink: str) -> None:
        self.registry = CollectorRegistry()
        self.sink = sink
        p = "meterstream_sink_"
        r = self.registry
        self.records = Counter(
            p + "records",
            "Records consumed, by topic and kind.",
            ["sink", "topic", "kind"],
            registry=r,
        )
        self.rows_written = Counter(
            p + "rows_written",
            "Rows made durable, by table or dataset.",
            ["sink", "table"],
            registry=r,
        )
        self.changed_rows = Counter(
            p + "changed_rows",
            "Upserts that changed an existing row's values (upstream is not deterministic).",
            ["sink", "table"],
            registry=r,
        )
        self.write_failures = Counter(
            p + "write_failures",
            "Writes refused because the store was unreachable.",
            ["sink"],
            registry=r,
        )
        self.outage = Gauge(
            p + "store_unavailable",
            "1 while the store is unreachable and partitions are paused.",
            ["sink"],
            registry=r,
        )
        self.commits = Counter(
            p + "commits", "Offset commits after durable writes.", ["sink"], registry=r
        )
        self.commit_failures = Counter(
            p + "commit_failures",
            "Commits Kafka refused (after a rebalance); the records are read again.",
            ["sink"],
            registry=r,
        )
        self.dead_letters = Counter(
            p + "dead_letters",
            "Records sent to the DLQ, by error type.",
            ["sink", "error"],
            registry=r,
        )
        self.lag = Gauge(
            p + "consumer_lag",
            "Records behind the end of the assigned partitions, by topic.",
            ["sink", "topic"],
            registry=r,
        )
        self.visibility = Histogram(
            p + "visibility_seconds",
            "From a record's broker append time to its write becoming durable.",
            ["sink"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.files_uploaded = Counter(
            p + "files_uploaded", "Parquet files uploaded to the lake.", ["sink"], registry=r
        )
        self.bytes_uploaded = Counter(
            p + "bytes_uploaded", "Bytes uploaded to the lake.", ["sink"], registry=r
        )
