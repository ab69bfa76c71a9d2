"""The household simulator as a connector source: paced, stamped, with its labels written out.

A simulated meter cannot report the future: whatever the speed, a reading is held back until
the wall clock reaches its timestamp. ``--sim-speed max`` with a start in the past therefore
fills the past as fast as possible and then follows real time, and no reading ever trips the
connector's clock-skew check.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from connector.clock import Clock
from connector.pacing import Pacer, parse_speed
from connector.producer import OnFull
from connector.progress import Progress
from connector.simulator import AnomalyConfig, HouseholdSimulator, write_labels
from connector.simulator.anomalies import ANOMALY_KINDS
from meterstream.settings import SimSettings
from schemas.records import ReadingRecord
from schemas.timestamps import datetime_to_micros, micros_to_datetime

log = logging.getLogger(__name__)

# Big enough to amortise per-batch work at full speed, small enough to keep shutdown prompt.
_MAX_CHUNK = 5_000


def anomaly_config(text: str) -> AnomalyConfig:
    """``all``, ``none`` or a comma-separated list of kinds, as METERSTREAM_SIM_ANOMALIES takes it."""
    wanted = [k.strip() for k in text.split(",") if k.strip()]
    if wanted in ([], ["none"]):
        return AnomalyConfig.none()
    if wanted == ["all"]:
        return AnomalyConfig()
    unknown = sorted(set(wanted) - set(ANOMALY_KINDS))
    if unknown:
        raise ValueError(f"unknown anomaly kinds {unknown}; known: {', '.join(ANOMALY_KINDS)}")
    return AnomalyConfig.only(*wanted)  # type: ignore[arg-type]


def _chunks(batch: list[ReadingRecord], paced: bool) -> Iterator[list[ReadingRecord]]:
    """Groups of equal timestamps when paced; slices of at most _MAX_CHUNK otherwise."""
    if not paced:
        for start in range(0, len(batch), _MAX_CHUNK):
            yield batch[start : start + _MAX_CHUNK]
        return
    start = 0
    for i in range(1, len(batch) + 1):
        if i == len(batch) or batch[i]["ts"] != batch[start]["ts"]:
            yield batch[start:i]
            start = i


_DAY_US = 86_400_000_000


def default_start_us(settings: SimSettings, now_s: float) -> int:
    """Where a simulation without METERSTREAM_SIM_START begins, on the interval grid.

    A simulated meter cannot report the future, so a run faster than real time needs a past to
    fill: a bounded run ends now (it starts ``duration`` ago); an unbounded fast run starts a day
    ago and then follows real time; a real-time run starts now.
    """
    interval_us = int(settings.interval * 1_000_000)
    now_us = int(now_s * 1_000_000)
    if settings.duration is not None:
        start = now_us - int(settings.duration * 1_000_000)
    elif parse_speed(settings.speed) != 1.0:
        start = now_us - _DAY_US
    else:
        start = now_us
    return start - start % interval_us


class SimulatedSource:
    name = "simulate"
    # A simulation can wait for Kafka: nothing is lost by slowing it down.
    on_full: OnFull = "wait"

    def __init__(self, settings: SimSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        interval_us = int(settings.interval * 1_000_000)
        start_us = (
            default_start_us(settings, clock.wall())
            if settings.start is None
            else datetime_to_micros(settings.start)
        )
        self.start_us = start_us
        self.end_us = (
            None if settings.duration is None else start_us + int(settings.duration * 1_000_000)
        )
        self.simulator = HouseholdSimulator(
            settings.meters,
            start_us=start_us,
            interval_s=settings.interval,
            seed=settings.seed,
            tz=settings.tz,
            anomalies=anomaly_config(settings.anomalies),
        )
        self._pacer = Pacer(clock, parse_speed(settings.speed))
        self._paced = parse_speed(settings.speed) is not None
        total = None
        if self.end_us is not None:
            total = settings.meters * ((self.end_us - start_us + interval_us - 1) // interval_us)
        self._progress = Progress(f"simulate {settings.meters} meter(s)", total=total)
        self._labels_written = 0
        self._labels_file: IO[str] | None = None
        self._last_ts: int | None = None

    def ready(self) -> bool:
        return True

    async def _not_before(self, ts_us: int) -> None:
        ahead = ts_us / 1e6 - self._clock.wall()
        if ahead > 0:
            await self._clock.sleep(ahead)

    def _write_new_labels(self, until_us: int) -> None:
        if self._settings.labels_file is None:
            return
        if self._labels_file is None:
            # Created even when empty: "no anomalies" is an answer too.
            path = Path(self._settings.labels_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._labels_file = path.open("w", encoding="utf-8")
        labels = self.simulator.labels_until(until_us)
        new = labels[self._labels_written :]
        if not new:
            return
        write_labels(new, self._labels_file)
        self._labels_file.flush()
        self._labels_written = len(labels)

    async def batches(self) -> AsyncIterator[list[ReadingRecord]]:
        log.info(
            "simulating %d meter(s) from %s%s, every %.1f s, speed %s, seed %d, anomalies %s",
            self._settings.meters,
            micros_to_datetime(self.start_us).isoformat(),
            f" to {micros_to_datetime(self.end_us).isoformat()}" if self.end_us else " on (no end)",
            self._settings.interval,
            self._settings.speed,
            self._settings.seed,
            self._settings.anomalies,
        )
        try:
            for batch in self.simulator.batches(self.end_us):
                for chunk in _chunks(batch, self._paced):
                    last_ts = chunk[-1]["ts"]
                    await self._pacer.wait_for(chunk[0]["ts"])
                    await self._not_before(last_ts)
                    received = int(self._clock.wall() * 1_000_000)
                    for reading in chunk:
                        reading["received_at"] = received
                    self._last_ts = last_ts
                    self._progress.advance(len(chunk))
                    yield chunk
                self._write_new_labels(batch[-1]["ts"] + 1)
            if self.end_us is not None:
                self._write_new_labels(self.end_us)
        finally:
            self._progress.close()
            if self._labels_file is not None:
                self._labels_file.close()

    def summary(self) -> str:
        span = ""
        if self._last_ts is not None:
            span = f" from {micros_to_datetime(self.start_us):%Y-%m-%d %H:%M} to {micros_to_datetime(self._last_ts):%Y-%m-%d %H:%M} UTC"
        labels = (
            f", {self._labels_written} labelled anomalies in {self._settings.labels_file}"
            if self._settings.labels_file
            else ""
        )
        return f"simulated {self._progress.count:,} readings of {self._settings.meters} meter(s){span}{labels}"
