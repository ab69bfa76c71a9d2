"""Prometheus metrics and the /healthz and /readyz endpoints of the connector.

Metric names are prefixed ``meterstream_connector_``. Per-meter labels are fine at homelab scale
(a handful of meters); the simulator with thousands of meters is a benchmark, not a deployment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


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


class HealthServer:
    """Serves /metrics, /healthz (the process is up) and /readyz (subscribed and data fresh)."""

    def __init__(
        self, metrics: ConnectorMetrics, ready: Callable[[], bool], host: str, port: int
    ) -> None:
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    self._send(200, b"ok\n", "text/plain")
                elif self.path.startswith("/readyz"):
                    is_ready = ready()
                    self._send(
                        200 if is_ready else 503,
                        b"ready\n" if is_ready else b"not ready\n",
                        "text/plain",
                    )
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every 15 s would drown the log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on port %d (/metrics, /healthz, /readyz)", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
