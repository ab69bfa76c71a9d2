"""The consume loop every sink runs: poll, decode, hand to the destination, commit when durable.

Rules it keeps, whatever the destination:

* offsets are committed only by the destination's ``commit`` callback, i.e. after a durable write;
* ticks are recognised by their header before any decode and handed on as empty records;
* a record that cannot be decoded goes to the DLQ with the reason and counts as done;
* a store outage pauses the partitions, but the loop keeps polling (so the group does not evict
  it), retries with backoff and keeps everything it buffered;
* a commit Kafka refuses (after a rebalance) is logged and counted: the records are read again
  by whoever owns the partition, and the idempotent writes absorb the repeat;
* SIGTERM: write everything buffered, commit, leave the group, exit 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from meterstream.backoff import Backoff
from meterstream.faults import fault_point
from meterstream.kafka.clients import consumer_config, producer_config
from meterstream.settings import KafkaSettings
from schemas.codec import AvroCodec
from schemas.errors import DecodeError, RegistryError
from schemas.topics import (
    DLQ_ERROR_HEADER,
    DLQ_ERROR_TYPE_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
    is_tick,
)
from sinks.runtime.destination import Destination, StoreUnavailable
from sinks.runtime.metrics import SinkMetrics
from sinks.runtime.records import Consumed, TopicPartition

log = logging.getLogger(__name__)

_POLL_BATCH = 2000
_LAG_EVERY_S = 5.0


@dataclass(frozen=True)
class LoopConfig:
    group_id: str
    topics: Mapping[str, AvroCodec]  # full topic name -> the codec of its records
    dlq_topic: str
    retry_initial: float
    retry_max: float
    shutdown_timeout: float = 60.0
    idle_poll: float = 0.2
    poll_batch: int = _POLL_BATCH  # records taken per poll before the destination is asked
    session_timeout: float = 10.0


class SinkLoop:
    """Runs one destination against its topics until :meth:`stop` is called."""

    def __init__(
        self,
        kafka: KafkaSettings,
        config: LoopConfig,
        destination: Destination,
        metrics: SinkMetrics,
        *,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.destination = destination
        self.metrics = metrics
        self._sink = metrics.sink
        self._stop = threading.Event()
        self._backoff = Backoff(config.retry_initial, max(config.retry_initial, config.retry_max))
        self._retry_at = 0.0  # monotonic time of the next write attempt while the store is down
        self._paused = False
        self._assigned: set[TopicPartition] = set()
        self._ever_assigned = False
        self._next_lag = 0.0
        self._consumer = Consumer(
            consumer_config(
                kafka,
                config.group_id,
                # A sink that waits for its store still polls, so only a hung process is evicted.
                **{
                    "max.poll.interval.ms": 300_000,
                    "session.timeout.ms": int(config.session_timeout * 1000),
                    "heartbeat.interval.ms": int(min(3.0, config.session_timeout / 3) * 1000),
                    **(consumer_overrides or {}),
                },
            )
        )
        self._dlq = Producer(producer_config(kafka))

    # -- state for health checks ------------------------------------------------------------
    @property
    def store_available(self) -> bool:
        return not self._paused

    def ready(self) -> bool:
        return self._ever_assigned and not self._paused and not self._stop.is_set()

    def stop(self) -> None:
        """Ask the loop to finish: write what is buffered, commit, return (signal-safe)."""
        self._stop.set()

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> bool:
        """Consume until stopped; True when everything buffered was written and committed."""
        self._consumer.subscribe(
            list(self.config.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._stop.is_set():
                self._step()
            return self._shutdown()
        finally:
            self._dlq.flush(10)
            self.destination.close()

    def _step(self) -> None:
        now = time.monotonic()
        timeout = self.config.idle_poll
        if self._paused:
            timeout = min(timeout, max(0.0, self._retry_at - now))
        messages = self._consumer.consume(self.config.poll_batch, timeout=timeout)
        self._take(messages)
        now = time.monotonic()
        if (not self._paused or now >= self._retry_at) and (
            self._paused or self.destination.due(now)
        ):
            self._write(final=False)
        if now >= self._next_lag:
            self._next_lag = now + _LAG_EVERY_S
            self._report_lag()

    def _take(self, messages: Sequence[Message]) -> None:
        rewound: set[TopicPartition] = set()
        counts: Counter[tuple[str, str]] = Counter()  # (topic, kind): one metric update per batch
        codecs = self.config.topics
        add = self.destination.add
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s sink: consumer error: %s", self._sink, error)
                continue
            topic: str = message.topic()  # type: ignore[assignment]
            partition: int = message.partition()  # type: ignore[assignment]
            offset: int = message.offset()  # type: ignore[assignment]
            if rewound and (topic, partition) in rewound:
                continue  # re-read after the registry comes back
            timestamp_us = message.timestamp()[1] * 1000
            headers = message.headers()
            # confluent-kafka's consumer gives headers as a list of (str, bytes) pairs.
            if headers and is_tick(cast("list[tuple[str, bytes | None]]", headers)):
                counts[(topic, "tick")] += 1
                add(Consumed(topic, partition, offset, timestamp_us, None))
                continue
            try:
                value = codecs[topic].decode(
                    message.value(), topic=topic, partition=partition, offset=offset
                )
            except DecodeError as exc:
                self._dead_letter(message, exc)
                self.destination.add(Consumed(topic, partition, offset, timestamp_us, None))
                continue
            except RegistryError as exc:
                # Not the record's fault: read it again once the registry answers.
                log.warning("%s sink: schema registry unavailable (%s); retrying", self._sink, exc)
                self._consumer.seek(KafkaTopicPartition(topic, partition, offset))
                rewound.add((topic, partition))
                self._enter_outage()
                continue
            counts[(topic, "record")] += 1
            add(Consumed(topic, partition, offset, timestamp_us, value))
        for (topic, kind), count in counts.items():
            self.metrics.records.labels(self._sink, topic, kind).inc(count)

    def _dead_letter(self, message: Message, exc: DecodeError) -> None:
        topic = cast(str, message.topic())
        log.warning("%s sink: dead letter: %s", self._sink, exc)
        self.metrics.dead_letters.labels(self._sink, type(exc).__name__).inc()
        self.metrics.records.labels(self._sink, topic, "dead_letter").inc()
        self._dlq.produce(
            self.config.dlq_topic,
            key=message.key(),
            value=message.value(),
            headers=[
                (DLQ_ERROR_HEADER, str(exc).encode()),
                (DLQ_ERROR_TYPE_HEADER, type(exc).__name__.encode()),
                (DLQ_SOURCE_TOPIC_HEADER, topic.encode()),
                (DLQ_SOURCE_PARTITION_HEADER, str(message.partition()).encode()),
                (DLQ_SOURCE_OFFSET_HEADER, str(message.offset()).encode()),
            ],
        )
        # The dead letter must be in Kafka before the record's offset can be committed.
        self._dlq.flush(30)

    # -- writes, outages and commits -----------------------------------------------------------
    def _write(self, *, final: bool) -> bool:
        try:
            self.destination.write(self._commit, final=final)
        except StoreUnavailable as exc:
            self.metrics.write_failures.labels(self._sink).inc()
            delay = self._enter_outage()
            log.warning(
                "%s sink: %s; %d records kept, partitions paused, retry in %.1f s",
                self._sink,
                exc,
                self.destination.buffered(),
                delay,
            )
            return False
        if self._paused:
            log.info("%s sink: store reachable again, resuming partitions", self._sink)
            self._paused = False
            self._backoff.reset()
            self.metrics.outage.labels(self._sink).set(0)
            self._set_paused(False)
        return True

    def _enter_outage(self) -> float:
        delay = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        if not self._paused:
            self._paused = True
            self.metrics.outage.labels(self._sink).set(1)
            self._set_paused(True)
        return delay

    def _set_paused(self, paused: bool) -> None:
        partitions = [KafkaTopicPartition(t, p) for t, p in self._assigned]
        if not partitions:
            return
        try:
            if paused:
                self._consumer.pause(partitions)
            else:
                self._consumer.resume(partitions)
        except KafkaException as exc:  # a rebalance in between; the next assignment decides
            log.debug("pause/resume skipped: %s", exc)

    def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        owned = {tp: o for tp, o in offsets.items() if tp in self._assigned}
        if not owned:
            return
        fault_point("after_write_before_commit")
        try:
            self._consumer.commit(
                offsets=[KafkaTopicPartition(t, p, o) for (t, p), o in owned.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            self.metrics.commit_failures.labels(self._sink).inc()
            log.warning(
                "%s sink: commit refused (%s); those records will be read again", self._sink, exc
            )
            return
        self.metrics.commits.labels(self._sink).inc()
        fault_point("after_commit")

    # -- rebalances ----------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        tps = {(p.topic, int(p.partition)) for p in partitions}
        self._assigned |= tps
        self._ever_assigned = True
        log.info("%s sink: assigned %s", self._sink, _describe(tps))
        if self._paused:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        tps = {(p.topic, int(p.partition)) for p in partitions}
        # Write and commit what we have while we still own the partitions, so the next owner
        # does not redo it; if the store is down, the next owner reads it again instead.
        if not self._paused and self.destination.buffered():
            self._write(final=True)
        self._release(tps, "revoked")

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        self._release({(p.topic, int(p.partition)) for p in partitions}, "lost")

    def _release(self, tps: set[TopicPartition], why: str) -> None:
        self.destination.revoke(tps)
        self._assigned -= tps
        log.info("%s sink: %s %s", self._sink, why, _describe(tps))

    # -- shutdown and metrics ------------------------------------------------------------------
    def _shutdown(self) -> bool:
        deadline = time.monotonic() + self.config.shutdown_timeout
        done = False
        while True:
            if self._write(final=True):
                done = True
                break
            if time.monotonic() + max(0.0, self._retry_at - time.monotonic()) > deadline:
                break
            # Keep the membership alive while waiting for the store.
            self._take(self._consumer.consume(self.config.poll_batch, timeout=0.2))
            time.sleep(max(0.0, min(1.0, self._retry_at - time.monotonic())))
        if not done:
            log.error(
                "%s sink: store still unavailable at shutdown; %d buffered records were not "
                "written and will be read again from Kafka on the next start",
                self._sink,
                self.destination.buffered(),
            )
        self._consumer.close()
        return done

    def _report_lag(self) -> None:
        if not self._assigned:
            return
        try:
            positions = self._consumer.position(
                [KafkaTopicPartition(t, p) for t, p in self._assigned]
            )
        except KafkaException:
            return
        lag: dict[str, int] = {}
        for tp in positions:
            topic = tp.topic
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            position = int(tp.offset)
            if high >= 0 and position >= 0:
                lag[topic] = lag.get(topic, 0) + max(0, high - position)
        for topic, value in lag.items():
            self.metrics.lag.labels(self._sink, topic).set(value)


def _describe(tps: Collection[TopicPartition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"
