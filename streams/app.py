"""The Faust worker: topics, tables, the agent, the tick timer, and how it starts and stops.

Faust gives us the consumer group, RocksDB tables with changelogs and their recovery; the
decisions about windows, offsets and scores are ours (:mod:`streams.processor`), because Faust's
windowed tables close windows on the wall clock, drop late data silently and lose open windows on
restart (``docs/architecture.md``).

The consumer hands the agent one event per partition and fetch, carrying the fetched records
(:mod:`streams.fetch`: Faust's event per record cost four times the worker's own work). Order of
work for one batch:

1. apply every record in offset order (or skip it if the state already has it);
2. at most every flush interval, write each changed meter's state once, then the partition's
   applied offset (changelogged);
3. queue the batch's scores on the producer.

A crash after 2 and before the scores leave is covered by the outbox (re-sent on the next
assignment); a crash before 2 loses nothing because the records are consumed again.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import FutureMessage

from meterstream.faults import fault_point
from meterstream.kafka.clients import consumer_config
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.errors import DecodeError
from schemas.registry import ConfluentRegistry, value_subject
from schemas.topics import (
    CHANGELOG_MAX_MESSAGE_BYTES,
    DLQ_ERROR_HEADER,
    DLQ_ERROR_TYPE_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
    READINGS,
    READINGS_DLQ,
    SCORES,
    TICK_KEY,
    is_tick,
    tick_headers,
)
from streams.config import worker_core
from streams.fetch import BatchingApp, BatchingConsumer, BatchMessage
from streams.metrics import WorkerMetrics
from streams.processor import Output
from streams.tables import TrackedTable

log = logging.getLogger(__name__)

CLEAN_STOP_MARKER = "clean-stop"


def prepare_data_dir(data_dir: Path) -> bool:
    """Wipe local tables after an unclean stop; returns True when it wiped.

    After a SIGKILL the local RocksDB can be ahead of the changelog (a write reached RocksDB but
    not Kafka). Restoring from the changelog instead keeps every worker's state the same, as Kafka
    Streams does under exactly-once.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = data_dir / CLEAN_STOP_MARKER
    tables = sorted(data_dir.glob("v*/tables"))
    clean = marker.exists()
    marker.unlink(missing_ok=True)
    if clean or not tables:
        return False
    for path in tables:
        shutil.rmtree(path, ignore_errors=True)
    log.warning(
        "no clean-stop marker in %s: local tables wiped, they are restored from the changelog",
        data_dir,
    )
    return True


def mark_clean_stop(data_dir: Path) -> None:
    (data_dir / CLEAN_STOP_MARKER).write_text("the worker stopped cleanly\n")


@dataclass(frozen=True)
class _Record:
    """A record read with confluent-kafka, shaped like aiokafka's (timestamp in ms)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int

    @classmethod
    def from_confluent(cls, message: Any) -> _Record:
        return cls(
            message.topic(),
            message.partition(),
            message.offset(),
            message.key(),
            message.value(),
            list(message.headers() or []),
            int(message.timestamp()[1]),
        )


# Faust makes a stream wait (and logs a warning per message) once more than 100 table writes
# wait for the changelog producer. One state flush writes every changed meter at once (thousands
# with thousands of meters), so the limit is raised to a few flushes' worth: still back-pressure,
# but per flush rather than per message.
PRODUCER_BUFFER_MESSAGES = 20_000

# Batches queued between the consumer and the agent.
READINGS_QUEUE = 16

# Reading records the state is missing (see WorkerApp._read_range): applied in chunks of this
# many, and a read that makes no progress for this long stops the worker.
CATCH_UP_CHUNK = 10_000
CATCH_UP_STALL_S = 60.0


class WorkerApp:
    """One Faust app built from the settings (no module-level app: tests build many)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        worker = settings.worker
        kafka = settings.kafka
        prefix = kafka.topic_prefix
        self.readings_topic_name = prefix + READINGS
        self.metrics = WorkerMetrics()
        ProducerBuffer.max_messages = max(ProducerBuffer.max_messages, PRODUCER_BUFFER_MESSAGES)
        self.app = BatchingApp(
            worker.app_id,
            broker=[f"kafka://{host.strip()}" for host in kafka.bootstrap_servers.split(",")],
            store="rocksdb://",
            datadir=str(worker.data_dir),
            autodiscover=False,
            topic_partitions=kafka.partitions,
            topic_replication_factor=kafka.replication_factor,
            # Topics are made by `meterstream topics create` with the right configs.
            topic_allow_declare=False,
            topic_disable_leader=True,
            table_standby_replicas=0,
            web_enabled=False,  # our health server on web_port; Faust's would serve table data
            consumer_group_instance_id=worker.instance_id
            or f"{worker.app_id}-{socket.gethostname()}",
            broker_session_timeout=worker.session_timeout,
            broker_heartbeat_interval=max(1.0, worker.session_timeout / 10),
            broker_rebalance_timeout=max(30.0, worker.session_timeout * 2),
            broker_commit_interval=worker.commit_interval,
            consumer_auto_offset_reset="earliest",
            producer_max_request_size=CHANGELOG_MAX_MESSAGE_BYTES,
            consumer_max_fetch_size=2 * CHANGELOG_MAX_MESSAGE_BYTES,
            broker_max_poll_records=worker.batch_size,
            stream_wait_empty=True,
            processing_guarantee="at_least_once",
            Table=TrackedTable,
        )
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        # Each event is a batch of up to batch_size records: a short queue keeps memory bounded
        # (Faust's default of 4,096 events would be millions of records).
        self.readings = self.app.topic(
            self.readings_topic_name, partitions=kafka.partitions, maxsize=READINGS_QUEUE, **raw
        )
        self.app.batched_topics = frozenset({self.readings_topic_name})
        self.scores = self.app.topic(prefix + SCORES, partitions=kafka.partitions, **raw)
        self.dlq = self.app.topic(prefix + READINGS_DLQ, partitions=kafka.partitions, **raw)
        rocksdb = {
            "block_cache_size": worker.rocksdb_block_cache_mb * 1024 * 1024,
            "write_buffer_size": worker.rocksdb_write_buffer_mb * 1024 * 1024,
            "max_write_buffer_number": 2,
        }
        table_args: dict[str, Any] = {
            "partitions": kafka.partitions,
            # bytes keys and values: Faust's "raw" codec, our own encodings inside.
            "key_type": bytes,
            "value_type": bytes,
            "options": rocksdb,
        }
        self.state = cast(TrackedTable, self.app.Table("meter-state", **table_args))
        self.snapshots = cast(TrackedTable, self.app.Table("meter-snapshots", **table_args))
        registry = (
            ConfluentRegistry(settings.schema_registry.url)
            if settings.schema_registry.url
            else None
        )
        self.core = worker_core(
            worker,
            partitions=kafka.partitions,
            readings=AvroCodec.for_schema(
                "Reading", registry=registry, subject=value_subject(self.readings_topic_name)
            ),
            scores=AvroCodec.for_schema(
                "AnomalyScore", registry=registry, subject=value_subject(prefix + SCORES)
            ),
            metrics=self.metrics,
        )
        self._client_config = consumer_config(settings.kafka, worker.app_id)
        self._flush_interval = worker.flush_interval
        self._last_flush: dict[int, float] = {}
        self._snapshot_marks: dict[int, FutureMessage | None] = {}
        self._state_marks: dict[int, FutureMessage | None] = {}
        self.app.agent(self.readings, name="score")(self._process)
        self.app.timer(worker.tick_interval)(self._tick)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    # -- rebalancing ---------------------------------------------------------------------------
    async def _on_revoked(self, sender: Any, revoked: set[TP], **_: Any) -> None:
        self.core.close_partitions(
            {tp.partition for tp in revoked if tp.topic == self.readings_topic_name}
        )

    async def _on_assigned(self, sender: Any, assigned: set[TP], **_: Any) -> None:
        # Caches of every newly assigned partition are dropped too: if a partition went to
        # another worker and came back, what we remember of it is stale.
        mine = {tp.partition for tp in assigned if tp.topic == self.readings_topic_name}
        self.core.close_partitions(mine)
        for partition in mine:
            self._state_marks.pop(partition, None)
        self.metrics.assigned.set(len(mine))

    # -- ticks ---------------------------------------------------------------------------------
    async def _tick(self) -> None:
        """Send a tick to every readings partition this worker owns (and only those)."""
        for tp in self.app.consumer.assignment():
            if tp.topic != self.readings_topic_name:
                continue
            try:
                await self.app.producer.send(
                    topic=tp.topic,
                    key=TICK_KEY,
                    value=None,
                    partition=tp.partition,
                    timestamp=None,
                    headers=tick_headers(),
                )
            except Exception:  # a failed tick is retried by the next one; never crash for it
                log.exception("could not send a tick to %s[%d]", tp.topic, tp.partition)

    # -- the agent -----------------------------------------------------------------------------
    @property
    def _consumer(self) -> BatchingConsumer:
        return cast(BatchingConsumer, self.app.consumer)

    async def _process(self, stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if not isinstance(message, BatchMessage):  # the consumer batches this topic
                raise TypeError(f"expected a batch of records, got {type(message).__name__}")
            try:
                await self._process_batch(message)
            except Exception as exc:
                # Stop the worker rather than go on past a batch that was not applied and
                # acked (Faust would restart the agent and commit nothing of this partition
                # again). A restart is safe: the state owns its input position.
                log.exception("partition %d: the batch failed; stopping", message.partition)
                await self.app.crash(exc)
                raise

    async def _process_batch(self, message: BatchMessage) -> None:
        partition = message.partition
        self._note_acknowledged(partition)
        with self.metrics.batch_seconds.time():
            outputs = await self._apply(partition, message.records)
            # State is written at most every flush_interval: with thousands of meters a batch
            # touches each meter about once, and a write per reading is what made the
            # one-record-at-a-time path slow. Anything applied but not yet written is applied
            # again after a crash (the state owns its position), giving the same scores.
            # Table writes go to the partition of the current event: this batch's.
            await self._maybe_flush(partition)
        fault_point("batch_applied")
        for output in outputs:
            await self.scores.send(key=output.meter_id.encode(), value=output.payload)
        self._consumer.ack_batch(message)
        fault_point("after_output")

    async def _maybe_flush(self, partition: int) -> None:
        """Write the partition's state if the flush interval passed or the core asks for it."""
        now = time.monotonic()
        since = now - self._last_flush.setdefault(partition, now)
        if since < self._flush_interval and not self.core.flush_wanted(partition):
            return
        self._last_flush[partition] = now
        await self._snapshots_durable(partition)
        self.metrics.changelog_bytes.inc(self.core.flush_partition(partition, self.state))
        # What the next flush waits for, and what tells the core this flush is in Kafka.
        self._snapshot_marks[partition] = self.snapshots.last_writes.get(partition)
        self._state_marks[partition] = self.state.last_writes.get(partition)

    def _note_acknowledged(self, partition: int) -> None:
        """Tell the core once Kafka has acknowledged the partition's last state flush."""
        for table in (self.state, self.snapshots):
            table.raise_failed_write()
        mark = self._state_marks.get(partition)
        if mark is not None and mark.done():
            mark.result()  # a failed write raises here: never treat it as acknowledged
            self._state_marks[partition] = None
            self.core.acknowledged(partition)

    async def _snapshots_durable(self, partition: int) -> None:
        """Wait until the snapshot writes queued before the previous flush are acknowledged.

        The state written next relies on the snapshots taken before the previous flush (a meter
        keeps its feature vectors back to the snapshot before its latest, so losing only the
        latest is harmless). They sit in another changelog topic, with no ordering against the
        state's, so without this wait a crash could leave a state whose snapshot never arrived.
        A flush interval later they are almost always acknowledged already: no wait.
        """
        mark = self._snapshot_marks.get(partition)
        if mark is None:
            return
        if mark.done():
            mark.result()  # raises if that write failed
            return
        with self.metrics.durable_wait_seconds.time():
            await mark

    async def _apply(self, partition: int, records: Sequence[Any]) -> list[Output]:
        """Apply a partition's records (aiokafka's or :class:`_Record`) in offset order."""
        outputs: list[Output] = []
        if not self.core.is_open(partition):
            resend = self.core.open_partition(partition, self.state)
            self.metrics.resent.inc(len(resend))
            outputs.extend(resend)
        counts = {"tick": 0, "reading": 0}
        for record in records:
            offset = record.offset
            applied = self.core.applied(partition)
            if applied is not None and offset <= applied:
                self.metrics.replayed_skipped.inc()  # already in the state
                continue
            if applied is None or offset > applied + 1:
                # The state is behind what Kafka delivers: Faust commits what was applied, the
                # state is written up to a flush interval later, so after a crash the group's
                # offset can be ahead of the state's (or the state has no position at all while
                # the group has one). Read the missing records first, in order.
                start = None if applied is None else applied + 1
                for chunk in self._read_range(partition, start, offset):
                    for missing in chunk:
                        outputs.extend(await self._apply_record(partition, missing, counts))
                    # A long catch-up (days of a partition) flushes as it goes, so no meter's
                    # state grows towards Kafka's record size.
                    await self._maybe_flush(partition)
            outputs.extend(await self._apply_record(partition, record, counts))
        for kind, count in counts.items():
            self.metrics.records.labels(kind).inc(count)
        return outputs

    async def _apply_record(
        self, partition: int, record: Any, counts: dict[str, int]
    ) -> list[Output]:
        if is_tick(record.headers):
            counts["tick"] += 1
            return self.core.apply_tick(partition, record.offset, record.timestamp, self.snapshots)
        counts["reading"] += 1
        try:
            return self.core.apply_reading(
                partition,
                record.offset,
                record.value or b"",
                append_ms=record.timestamp,
                state=self.state,
                snapshots=self.snapshots,
                topic=self.readings_topic_name,
            )
        except DecodeError as exc:
            await self._dead_letter(record, exc)
            self.core.skip(partition, record.offset)
            return []

    def _read_range(self, partition: int, start: int | None, end: int) -> Iterator[list[_Record]]:
        """Records [start, end) of a readings partition, read directly, in chunks (a rare path).

        ``start=None``: from the start of the log (the state has never applied a record of this
        partition). Faust will not deliver offsets below what its group committed, so a seek
        cannot bring them back; a short-lived consumer of our own can. The read blocks the event
        loop (the group's heartbeats run in Faust's consumer thread).
        """
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                **self._client_config,
                "group.id": f"{self.settings.worker.app_id}-catch-up",
                "enable.auto.commit": False,
            }
        )
        try:
            low, _ = consumer.get_watermark_offsets(
                TopicPartition(self.readings_topic_name, partition), timeout=10
            )
            if start is None:
                start = low
            elif low > start:
                self.metrics.gaps.inc(low - start)
                log.error(
                    "partition %d: records %d..%d are gone (retention) before the worker applied them",
                    partition,
                    start,
                    low - 1,
                )
                start = low
            if start >= end:
                return
            consumer.assign([TopicPartition(self.readings_topic_name, partition, start)])
            self.metrics.seeks.inc()
            log.warning(
                "partition %d: state is behind Kafka: reading records %d..%d directly",
                partition,
                start,
                end - 1,
            )
            chunk: list[_Record] = []
            deadline = time.monotonic() + CATCH_UP_STALL_S
            reached_end = False  # offsets may have holes (transaction markers): read up to `end`
            while not reached_end:
                messages = consumer.consume(1000, timeout=1.0)
                if messages:
                    deadline = time.monotonic() + CATCH_UP_STALL_S
                elif time.monotonic() > deadline:
                    # Never apply the record after a hole: the worker stops, and its restart
                    # reads again from the state's position.
                    raise RuntimeError(
                        f"partition {partition}: reading records {start}..{end - 1} stalled "
                        f"for {CATCH_UP_STALL_S:.0f} s"
                    )
                for message in messages:
                    offset = message.offset()
                    if message.error() is not None or offset is None:
                        continue
                    if offset >= end - 1:
                        reached_end = True
                    if start <= offset < end:
                        chunk.append(_Record.from_confluent(message))
                if len(chunk) >= CATCH_UP_CHUNK or (reached_end and chunk):
                    yield sorted(chunk, key=lambda r: r.offset)
                    chunk = []
        finally:
            consumer.close()

    async def _dead_letter(self, message: Any, exc: Exception) -> None:
        self.metrics.dead_letters.labels(type(exc).__name__).inc()
        log.warning("dead letter: %s", exc)
        await self.dlq.send(
            key=message.key,
            value=message.value,
            headers=[
                (DLQ_ERROR_HEADER, str(exc).encode()),
                (DLQ_ERROR_TYPE_HEADER, type(exc).__name__.encode()),
                (DLQ_SOURCE_TOPIC_HEADER, message.topic.encode()),
                (DLQ_SOURCE_PARTITION_HEADER, str(message.partition).encode()),
                (DLQ_SOURCE_OFFSET_HEADER, str(message.offset).encode()),
            ],
        )

    # -- health ----------------------------------------------------------------------------------
    def ready(self) -> bool:
        recovery = getattr(self.app.tables, "recovery", None)
        return bool(recovery is not None and recovery.completed.is_set())
