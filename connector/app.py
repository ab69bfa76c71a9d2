"""The connector process: one source, one publisher, metrics, and a clean stop.

Its loop is the design: take a batch from the source, count it, drop what may not be published
(with a reason), drop duplicates, publish the rest, serve delivery reports. SIGTERM and SIGINT
end the loop; the producer is then flushed and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from connector.clock import Clock, SystemClock
from connector.dedupe import Deduplicator
from connector.metrics import ConnectorMetrics
from connector.producer import ReadingPublisher
from connector.sources.base import Source
from connector.validate import DropReason, check_reading
from meterstream.health import HealthServer
from schemas.records import ReadingRecord

log = logging.getLogger(__name__)

# How long a clean stop waits for Kafka to take what is buffered before giving up (and saying so).
FLUSH_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.1


@dataclass
class RunStats:
    received: int = 0
    queued: int = 0
    dropped: int = 0


class Connector:
    """Runs one source into Kafka until the source ends or the process is asked to stop."""

    def __init__(
        self,
        source: Source,
        publisher: ReadingPublisher,
        metrics: ConnectorMetrics,
        *,
        max_skew_s: float,
        dedupe_memory: int,
        health: HealthServer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.source = source
        self.publisher = publisher
        self.metrics = metrics
        self.health = health
        self._max_skew_us = int(max_skew_s * 1_000_000)
        self._dedupe = Deduplicator(dedupe_memory)
        self._clock = clock or SystemClock()
        self._last_seen: dict[str, float] = {}
        self.stats = RunStats()
        self._drop_log_budget = 100  # first drops are logged one by one, then only counted

    def ready(self) -> bool:
        return self.source.ready()

    def _count_received(self, batch: list[ReadingRecord]) -> None:
        # Counted once per meter and batch: a labelled counter per reading would cost more
        # than encoding it.
        per_meter: dict[str, int] = {}
        for reading in batch:
            meter_id = reading["meter_id"]
            per_meter[meter_id] = per_meter.get(meter_id, 0) + 1
        now = self._clock.monotonic()
        for meter_id, count in per_meter.items():
            self.metrics.received.labels(meter_id).inc(count)
            self._last_seen[meter_id] = now

    def _accept(self, reading: ReadingRecord) -> bool:
        meter_id = reading["meter_id"]
        reason = check_reading(reading, max_skew_us=self._max_skew_us)
        if reason is None and not self._dedupe.first_time(meter_id, reading["ts"]):
            reason = DropReason.DUPLICATE
        if reason is not None:
            self._drop(meter_id, reason, reading)
            return False
        return True

    def _drop(self, meter_id: str, reason: DropReason, reading: ReadingRecord) -> None:
        self.stats.dropped += 1
        self.metrics.dropped.labels(meter_id, reason.value).inc()
        if reason is DropReason.DUPLICATE:
            return  # expected after reconnects; counted, not logged
        if self._drop_log_budget > 0:
            self._drop_log_budget -= 1
            log.warning(
                "dropped a reading: reason=%s meter_id=%s ts=%s power_w=%s",
                reason.value,
                meter_id,
                reading.get("ts"),
                reading.get("power_w"),
            )

    async def _poll_forever(self) -> None:
        while True:
            self.publisher.poll(0)
            now = self._clock.monotonic()
            for meter_id, seen in self._last_seen.items():
                self.metrics.last_reading_age.labels(meter_id).set(now - seen)
            await asyncio.sleep(_POLL_INTERVAL_S)

    async def run(self) -> RunStats:
        """Publish until the source ends; flush; return what happened."""
        if self.health is not None:
            self.health.start()
        poller = asyncio.create_task(self._poll_forever(), name="producer-poll")
        try:
            async for batch in self.source.batches():
                self.stats.received += len(batch)
                self._count_received(batch)
                accepted = [r for r in batch if self._accept(r)]
                self.stats.queued += self.publisher.publish_many(accepted)
                # Give the poller and the source's own tasks a turn between batches.
                await asyncio.sleep(0)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            self._flush()
            if self.health is not None:
                self.health.stop()
        return self.stats

    def _flush(self) -> None:
        pending = self.publisher.pending
        if pending:
            log.info("flushing %d records to Kafka ...", pending)
        left = self.publisher.flush(FLUSH_TIMEOUT_S)
        if left:
            log.error(
                "%d records were still not delivered after %.0f s; they are lost unless the "
                "source sends them again",
                left,
                FLUSH_TIMEOUT_S,
            )


async def run_until_signalled(connector: Connector) -> RunStats:
    """Run the connector; SIGTERM or SIGINT stops it cleanly (flush, then return)."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(connector.run(), name="connector")
    stopping = asyncio.Event()

    def stop(signame: str) -> None:
        if not stopping.is_set():
            log.info("%s received: stopping, flushing what is buffered", signame)
            stopping.set()
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        return await task
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        return connector.stats
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
