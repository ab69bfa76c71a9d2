"""Faust's Kafka consumer, delivering each fetched batch of a partition as one event.

Faust turns every Kafka record into an event on its way to an agent: a message object, a task
that races the record against flow control, a channel queue, stream bookkeeping and an ack. On
this machine that costs about 90 µs per record, four times the worker's own work per reading
(decode, window update, scoring), and it capped the worker at about 8,700 readings/s.

The worker does not need an event per record: it applies the records of a partition in offset
order itself, and its state owns the applied offset (``streams.processor``). So for the topics
named in :attr:`BatchingApp.batched_topics`, this consumer hands Faust one :class:`BatchMessage`
per partition and fetch, carrying the fetched records. Everything else Faust does stays as it
is: group membership, table recovery (changelog records still go one by one), flow control on
rebalances, the current event that tells tables which partition they write, and commits.

Commits: the batch message has the offset of the batch's last record, and acking it acks every
offset of the batch, so Faust commits the whole batch once it is acked, and nothing of a batch that
was not (Faust drops events of an old generation during a rebalance without acking them; they are
fetched again from the committed offset).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage, Message, ack_lock
from mode.utils.futures import notify


class BatchMessage(ConsumerMessage):
    """One partition's fetched records, delivered to Faust as a single message.

    Offset, timestamp and partition are those of the last record, so Faust's bookkeeping
    (acks, commits, lag) sees the batch as its last record.
    """

    __slots__ = ("records",)

    records: Sequence[Any]  # aiokafka ConsumerRecords, in offset order


class BatchingConsumer(faust_aiokafka.Consumer):
    """The aiokafka consumer of Faust, batching the app's ``batched_topics``."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        batched: frozenset[str] = getattr(self.app, "batched_topics", frozenset())
        for tp, fetched in records.items():
            if not fetched:
                continue
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                # A rebalance started: what was fetched is dropped, as Faust does.
                return
            if not (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batched:
                yield tp, await self._batch_message(tp, fetched, generation_id)
                continue
            for record in fetched:
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    return
                yield tp, self._to_message(tp, record)

    async def _batch_message(
        self, tp: TP, fetched: Sequence[Any], generation_id: int
    ) -> BatchMessage:
        first, last = fetched[0], fetched[-1]
        read = self._read_offset[tp]
        if read is not None and first.offset > read + 1:
            # Offsets between the previous batch and this one that will never be delivered
            # (transaction markers): a gap, as Faust's fetch loop would add for them.
            await self._add_gap(tp, read + 1, first.offset - 1)
        if read is None or read < last.offset:
            # Faust's fetch loop adds a gap of its own from the offset it read last to the next
            # message's, which would count this batch's records as acked before they are.
            self._read_offset[tp] = last.offset - 1
        message = BatchMessage(
            last.topic,
            last.partition,
            last.offset,
            last.timestamp / 1000.0,
            last.timestamp_type,
            [],
            None,
            b"",
            None,
            0,
            0,
            tp,
            # The generation the records were fetched in (the gap above yields to the loop).
            generation_id=generation_id,
        )
        message.records = fetched
        return message

    def ack_batch(self, message: BatchMessage) -> None:
        """Mark every offset the batch spans as processed, so Faust can commit past it.

        The agent calls this once it has applied the batch. Faust's own ack would mark only
        the message's offset (the last record's); its stream iterator acks inline, so
        overriding :meth:`ack` is not enough. The stream's later ack sees ``acked`` and does
        nothing.
        """
        with ack_lock:  # the lock Faust's acks take
            if message.acked:
                return
            message.acked = True
            tp = message.tp
            committed = self._committed_offset[tp]
            first = message.records[0].offset
            if committed is not None:
                first = max(first, committed)
            acked_index = self._acked_index[tp]
            # Every offset from the first record to the last: offsets in between that carry no
            # record (transaction markers) will never be delivered either.
            offsets = [o for o in range(first, message.offset + 1) if o not in acked_index]
            self._unacked_messages.discard(message)
            acked_index.update(offsets)
            self._acked[tp].extend(offsets)
            self._n_acked += len(offsets)
            notify(self._waiting_for_ack)


class BatchingTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[Any]] = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose consumer batches the records of ``batched_topics`` (set after init)."""

    batched_topics: frozenset[str] = frozenset()

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)
