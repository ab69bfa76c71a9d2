"""/metrics, /healthz and /readyz for every long-running meterstream process.

A small threaded HTTP server beside the event loop: health checks keep answering while the loop
is busy, and nothing here can serve table contents (Faust's own web server is off).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class HealthServer:
    """Serves /metrics, /healthz (the process is up) and /readyz (subscribed and data fresh)."""

    def __init__(
        self, registry: CollectorRegistry, ready: Callable[[], bool], host: str, port: int
    ) -> None:

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
