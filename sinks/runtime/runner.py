"""Run a sink loop as a process: codecs, topic checks, health server, SIGTERM/SIGINT handling."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

from meterstream.backoff import Backoff
from meterstream.health import HealthServer
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.registry import ConfluentRegistry, value_subject
from sinks.runtime.destination import StoreUnavailable
from sinks.runtime.loop import SinkLoop

log = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_OK = 0
EXIT_UNFLUSHED = 1  # the store stayed down at shutdown: nothing lost, but re-read on next start


def when_reachable(
    action: Callable[[], T],
    store: str,
    retry_initial: float,
    retry_max: float,
    *,
    transient: tuple[type[BaseException], ...] = (StoreUnavailable,),
    deadline_s: float = 600.0,
) -> T:
    """Run a start-up step (migrations, bucket), waiting with backoff while ``store`` is down."""
    backoff = Backoff(retry_initial, retry_max)
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return action()
        except transient as exc:
            if time.monotonic() > deadline:
                raise
            delay = backoff.next_delay()
            log.warning("waiting for %s (%s); retry in %.1f s", store, exc, delay)
            time.sleep(delay)


def codec_for(settings: Settings, record: str, topic: str) -> AvroCodec:
    """The codec of ``record`` on ``topic``, with the registry when one is configured."""
    url = settings.schema_registry.url
    registry = ConfluentRegistry(url) if url else None
    return AvroCodec.for_schema(record, registry=registry, subject=value_subject(topic))


@contextmanager
def stop_on_signals(loop: SinkLoop) -> Iterator[None]:
    """SIGTERM and SIGINT ask the loop to flush, commit and return (the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: writing what is buffered, then stopping", signal.Signals(signum).name
        )
        loop.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_loop(settings: Settings, loop: SinkLoop) -> int:
    """Serve health and metrics, run the loop until a signal, return the exit code."""
    health = None
    if settings.metrics.port:
        health = HealthServer(
            loop.metrics.registry, loop.ready, settings.metrics.host, settings.metrics.port
        )
        health.start()
    try:
        with stop_on_signals(loop):
            flushed = loop.run()
    finally:
        if health is not None:
            health.stop()
    return EXIT_OK if flushed else EXIT_UNFLUSHED
