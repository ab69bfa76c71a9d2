"""Tibber Pulse live data as a connector source (meter_id = Tibber's home id)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from connector.clock import Clock
from connector.metrics import ConnectorMetrics
from connector.producer import OnFull
from connector.tibber.api import GqlLiveApi, LiveApi
from connector.tibber.guard import RejectedTokenGuard
from connector.tibber.payload import PayloadError, to_reading
from connector.tibber.policy import SocketBudget
from connector.tibber.session import TibberSession
from connector.validate import DropReason
from meterstream.settings import ConnectorSettings, TibberSettings
from schemas.records import ReadingRecord

log = logging.getLogger(__name__)

_MAX_BATCH = 500


class TibberSource:
    name = "tibber"
    # A live meter does not wait for Kafka: when the buffer is full, readings are dropped loudly.
    on_full: OnFull = "drop"

    def __init__(
        self,
        tibber: TibberSettings,
        connector: ConnectorSettings,
        clock: Clock,
        metrics: ConnectorMetrics,
        api: LiveApi | None = None,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._queue: asyncio.Queue[ReadingRecord] = asyncio.Queue()
        self.received = 0
        self.session = TibberSession(
            tibber,
            api or GqlLiveApi(tibber),
            clock,
            guard=RejectedTokenGuard(connector.data_dir),
            budget=SocketBudget(
                tibber.sockets_per_hour,
                connector.data_dir / "tibber-sockets.json",
                wall_offset=clock.wall() - clock.monotonic(),
            ),
            metrics=metrics,
            on_measurement=self._on_measurement,
        )

    def _on_measurement(self, home_id: str, measurement: Mapping[str, Any]) -> None:
        self.received += 1
        received_at = int(self._clock.wall() * 1_000_000)
        try:
            reading = to_reading(measurement, meter_id=home_id, received_at_us=received_at)
        except PayloadError as exc:
            self._metrics.dropped.labels(home_id, DropReason.BAD_PAYLOAD.value).inc()
            log.warning("dropped a Tibber payload: meter_id=%s reason=%s", home_id, exc)
            return
        self._queue.put_nowait(reading)

    def ready(self) -> bool:
        return self.session.ready()

    async def batches(self) -> AsyncIterator[list[ReadingRecord]]:
        session = asyncio.create_task(self.session.run(), name="tibber-session")
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait({getter, session}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    session.result()  # raises the session's fatal error
                    return
                batch = [getter.result()]
                while not self._queue.empty() and len(batch) < _MAX_BATCH:
                    batch.append(self._queue.get_nowait())
                yield batch
        finally:
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session

    def summary(self) -> str:
        return (
            f"received {self.received:,} Tibber measurements from {len(self.session.homes)} "
            f"home(s) over {self.session.sockets_opened} socket(s)"
        )
