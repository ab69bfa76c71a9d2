"""Publish readings to Kafka without losing any: the connector's imperative shell.

The producer is idempotent with ``acks=all`` and partitions with murmur2 on the raw ``meter_id``
key (see :mod:`meterstream.kafka.clients`). Two rules keep an outage from losing data:

* librdkafka gives up on a record after ``message.timeout.ms``. By default we set it to 0
  (retry until delivered); with a finite timeout the delivery callback produces timed-out records
  again, so an outage longer than the timeout still loses nothing.
* While Kafka is unreachable, records wait in librdkafka's queue, bounded by
  ``buffer_max_readings``. When it is full, a live source (Tibber) drops the reading, counts it
  and logs loudly; a bounded source (simulator, replay) waits for room instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, Producer

from connector.metrics import ConnectorMetrics
from connector.validate import DropReason
from meterstream.kafka.clients import producer_config
from meterstream.settings import ConnectorSettings, KafkaSettings
from schemas.codec import AvroCodec
from schemas.records import ReadingRecord

log = logging.getLogger(__name__)

OnFull = Literal["drop", "wait"]
# Loud, but not one line per dropped reading: at most one warning per interval.
_FULL_WARNING_INTERVAL_S = 10.0


class ReadingPublisher:
    """Encodes readings and hands them to an idempotent producer; counts every outcome."""

    def __init__(
        self,
        kafka: KafkaSettings,
        connector: ConnectorSettings,
        codec: AvroCodec,
        topic: str,
        metrics: ConnectorMetrics,
        *,
        on_full: OnFull = "drop",
        **producer_overrides: Any,
    ) -> None:
        self.topic = topic
        self._codec = codec
        self._metrics = metrics
        self._on_full = on_full
        self._retry_on_timeout = connector.message_timeout > 0
        config = producer_config(
            kafka,
            **{
                # Only failures come back as delivery reports: a Python callback per delivered
                # record would cost a third of the connector's throughput.
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                "message.timeout.ms": int(connector.message_timeout * 1000),
                "queue.buffering.max.messages": connector.buffer_max_readings,
                # The record count is the bound we promise; bytes are capped far above it.
                "queue.buffering.max.kbytes": 2_097_151,
                "linger.ms": int(connector.linger * 1000),
                "batch.num.messages": 10_000,
                **producer_overrides,
            },
        )
        self._producer = Producer(config)
        self._last_full_warning = 0.0
        self.queued = 0
        self.failed = 0
        metrics.buffer_capacity.set(connector.buffer_max_readings)

    # -- producing ---------------------------------------------------------------------
    def publish(self, reading: ReadingRecord) -> bool:
        """Queue one reading; False when it was dropped because the buffer is full."""
        return self.publish_many([reading]) == 1

    def publish_many(self, readings: Iterable[ReadingRecord]) -> int:
        """Queue readings for Kafka; returns how many were queued (the rest were dropped)."""
        per_meter: dict[str, int] = {}
        encode = self._codec.encode
        for reading in readings:
            meter_id = reading["meter_id"]
            if self._produce(meter_id.encode("utf-8"), encode(reading), meter_id):
                per_meter[meter_id] = per_meter.get(meter_id, 0) + 1
        for meter_id, count in per_meter.items():
            self._metrics.published.labels(meter_id).inc(count)
        queued = sum(per_meter.values())
        self.queued += queued
        self._producer.poll(0)
        return queued

    @property
    def delivered(self) -> int:
        """Records Kafka acknowledged so far (queued, minus failed, minus still waiting)."""
        return self.queued - self.failed - len(self._producer)

    def _produce(self, key: bytes, value: bytes, meter_id: str) -> bool:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key)
                return True
            except BufferError:
                if self._on_full == "wait":
                    # Serve delivery reports until there is room; a bounded source can wait.
                    self._producer.poll(0.1)
                    continue
                self._metrics.dropped.labels(meter_id, DropReason.BUFFER_FULL.value).inc()
                self._warn_full()
                return False

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._last_full_warning >= _FULL_WARNING_INTERVAL_S:
            self._last_full_warning = now
            log.error(
                "producer buffer FULL (%d records waiting for Kafka): new readings are being "
                'DROPPED; see meterstream_connector_readings_dropped{reason="buffer_full"}',
                len(self._producer),
            )

    def _on_delivery(self, err: KafkaError | None, message: Message) -> None:
        if err is None:
            return  # not reported with delivery.report.only.error; kept for safety
        if err.code() == KafkaError._MSG_TIMED_OUT and self._retry_on_timeout:
            # The app-level retry: the record goes back into the queue, nothing is lost.
            self._metrics.retried.inc()
            key = message.key() or b""
            self._produce(key, message.value() or b"", key.decode("utf-8", "replace"))
            return
        self.failed += 1
        self._metrics.delivery_failures.labels(self.topic, err.name()).inc()
        log.error(
            "Kafka refused a record for %s[%s]: %s", self.topic, message.partition(), err.str()
        )

    # -- housekeeping ------------------------------------------------------------------
    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self._metrics.queue_depth.set(len(self._producer))

    @property
    def pending(self) -> int:
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for every record to be delivered; returns what is left."""
        remaining = int(self._producer.flush(timeout))
        self._metrics.queue_depth.set(remaining)
        return remaining
