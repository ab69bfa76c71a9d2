"""Prometheus metrics of the connector (served by :class:`meterstream.health.HealthServer`).

Metric names are prefixed ``meterstream_connector_``. Per-meter labels are fine at homelab scale
(a handful of meters); the simulator with thousands of meters is a benchmark, not a deployment.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ConnectorMetrics:
    """Every connector metric, on its own registry (tests build as many as they like)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        prefix = "meterstream_connector_"
        self.received = Counter(
            prefix + "readings_received",
            "Readings received from the source.",
            ["meter_id"],
            registry=self.registry,
        )
        self.published = Counter(
            prefix + "readings_published",
            "Readings acknowledged by Kafka.",
            ["meter_id"],
            registry=self.registry,
        )
        self.dropped = Counter(
            prefix + "readings_dropped",
            "Readings not published, by reason.",
            ["meter_id", "reason"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            prefix + "delivery_failures",
            "Records Kafka refused or that timed out, by topic.",
            ["topic", "error"],
            registry=self.registry,
        )
        self.retried = Counter(
            prefix + "delivery_retries",
            "Records produced again after a delivery timeout.",
            registry=self.registry,
        )
        self.reconnects = Counter(
            prefix + "reconnects",
            "New sockets to the source, by cause.",
            ["cause"],
            registry=self.registry,
        )
        self.resubscriptions = Counter(
            prefix + "resubscriptions",
            "Subscriptions restarted on an open socket, by cause.",
            ["home_id", "cause"],
            registry=self.registry,
        )
        self.last_reading_age = Gauge(
            prefix + "last_reading_age_seconds",
            "Seconds since the meter's last reading arrived.",
            ["meter_id"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            prefix + "producer_queue_depth",
            "Records waiting in the producer for Kafka.",
            registry=self.registry,
        )
        self.buffer_capacity = Gauge(
            prefix + "producer_buffer_capacity",
            "Records the producer buffers at most.",
            registry=self.registry,
        )
        self.sockets_in_last_hour = Gauge(
            prefix + "sockets_opened_last_hour",
            "New sockets in the sliding hour (budget use).",
            registry=self.registry,
        )
