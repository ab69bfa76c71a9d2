"""The worker's per-partition logic between Faust and the pure core.

Faust hands it records of one partition in offset order; it owns the input position. The state
of a partition stores the offset of the last record it applied, and a record is applied only if
it is the next one: older offsets are skipped (already in the state), and a gap means the state
is behind what Kafka delivers (its changelog lost the tail before a crash), so the agent seeks
back. Nothing is skipped by timestamp. Per meter it keeps windows, model bookkeeping and an
outbox in one table value, written once per batch; models live in memory between batches and are
rebuilt lazily from their snapshot plus the feature vectors since.

This module knows tables only as mappings and Kafka only as offsets; the Faust agent in
:mod:`streams.agent` supplies the partition context.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from meterstream.faults import fault_point
from meterstream.kafka.partitioner import partition_for_meter
from schemas.codec import AvroCodec
from schemas.records import AnomalyScoreRecord
from streams.core.features import FeatureSpec, compute_features, vector
from streams.core.model import MeterModel, ModelConfig, ModelMismatchError, Scaler
from streams.core.snapshot import Manifest, SnapshotCorrupt
from streams.core.types import ClosedWindow, ReadingPoint, ScoreResult, WindowConfig
from streams.core.windowing import MeterWindows, WindowStateError
from streams.metrics import WorkerMetrics
from streams.snapshots import read_manifests, read_snapshot, write_snapshot
from streams.state import MeterState, OutboxEntry

log = logging.getLogger(__name__)

Table = MutableMapping[bytes, bytes]
APPLIED_PREFIX = "__applied__:"
HISTORY_PREFIX = "__history__:"
OUTBOX_BATCHES = 4


def applied_key(partition: int) -> bytes:
    return f"{APPLIED_PREFIX}{partition}".encode()


def history_key(meter_id: str) -> bytes:
    """Where a meter's vectors and outbox live (see :mod:`streams.state`)."""
    return f"{HISTORY_PREFIX}{meter_id}".encode()


@dataclass(frozen=True)
class Output:
    """A score to publish: keyed by meter, identified downstream by (meter, model, window)."""

    meter_id: str
    window_start_us: int
    payload: bytes


@dataclass
class _Meter:
    state: MeterState
    windows: MeterWindows
    dirty: bool = False  # the hot value changed since the last flush
    history_dirty: bool = False  # a window closed since the last flush
    # Windows counted in the meter's state as last written to the table, and as known to be in
    # the changelog (acknowledged by Kafka); from the table at load, so durable then.
    flushed_windows: int = 0
    durable_windows: int = 0
    snapshot_windows: int | None = None  # windows the latest snapshot has seen (None: not read)
    snapshot_due: bool = False  # a snapshot is due but waits until it is safe (see _score)


def _loaded(state: MeterState, windows: MeterWindows) -> _Meter:
    """A meter as read from the table: what it holds is in the changelog already."""
    total = state.windows_total
    return _Meter(state, windows, flushed_windows=total, durable_windows=total)


@dataclass
class _Partition:
    applied: int | None
    meters: dict[str, _Meter] = field(default_factory=dict)
    idle: set[str] = field(default_factory=set)  # meters with open windows (ticks check them)
    # Applied offsets at the last few flushes: outbox entries closed after the oldest one are
    # kept, whatever the outbox size, because their scores may still sit in the producer.
    flush_marks: deque[int] = field(default_factory=lambda: deque(maxlen=OUTBOX_BATCHES))
    flush_wanted: bool = False  # a meter's due snapshot waits for a flush (see _score)
    # Meters written by flushes whose acknowledgement is awaited, with their windows then.
    unacknowledged: list[tuple[_Meter, int]] = field(default_factory=list)


class WorkerCore:
    """Applies records to per-meter state and produces scores, partition by partition."""

    def __init__(
        self,
        *,
        app_id: str,
        partitions: int,
        windows: WindowConfig,
        features: FeatureSpec,
        model: ModelConfig,
        scaler: Callable[[], Scaler] | None,
        snapshot_every: int,
        outbox_size: int,
        model_cache: int = 2000,
        readings: AvroCodec,
        scores: AvroCodec,
        metrics: WorkerMetrics,
    ) -> None:
        self.app_id = app_id
        self.partitions = partitions
        self.window_config = windows
        self.feature_spec = features
        self.model_config = model
        self._scaler = scaler
        self.model_id = model.model_id(app_id)
        self.snapshot_every = snapshot_every
        self.outbox_size = outbox_size
        self._readings = readings
        self._scores = scores
        self.metrics = metrics
        self._parts: dict[int, _Partition] = {}
        # Least recently used first: a forest takes about 0.5 MB, so at thousands of meters only
        # the active ones stay in memory; the rest are restored from snapshots when needed.
        self._models: OrderedDict[str, MeterModel] = OrderedDict()
        self.model_cache = model_cache

    # -- assignment ------------------------------------------------------------------------
    def is_open(self, partition: int) -> bool:
        return partition in self._parts

    def open_partition(self, partition: int, state: Table) -> list[Output]:
        """Load a newly assigned partition: its applied offset, idle index and outbox.

        Returns every outbox entry of its meters, to be sent again: a score may have been lost
        between the state write and the producer before the crash that moved this partition.
        """
        raw = state.get(applied_key(partition))
        part = _Partition(applied=int(raw.decode()) if raw else None)
        resend: list[Output] = []
        for key, value in list(state.items()):
            meter_id = key.decode()
            if meter_id.startswith((APPLIED_PREFIX, HISTORY_PREFIX)) or value is None:
                continue
            if partition_for_meter(meter_id, self.partitions) != partition:
                continue
            meter_state, windows = self._decode_meter(
                meter_id, value, state.get(history_key(meter_id))
            )
            if windows.open_window_starts:
                part.idle.add(meter_id)
            part.meters[meter_id] = _loaded(meter_state, windows)
            resend.extend(
                Output(meter_id, e.window_start_us, e.payload) for e in meter_state.outbox
            )
        self._parts[partition] = part
        log.info(
            "partition %d: applied offset %s, %d meters, %d open, %d outbox scores to re-send",
            partition,
            part.applied,
            len(part.meters),
            len(part.idle),
            len(resend),
        )
        return resend

    def close_partitions(self, partitions: set[int]) -> None:
        """Forget revoked or re-assigned partitions and their cached models (they may be stale)."""
        for partition in partitions:
            part = self._parts.pop(partition, None)
            if part is not None:
                for meter_id in part.meters:
                    self._models.pop(meter_id, None)

    def applied(self, partition: int) -> int | None:
        return self._parts[partition].applied

    def flush_wanted(self, partition: int) -> bool:
        """True when a meter needs a flush before its next snapshot: flush before the interval."""
        return self._parts[partition].flush_wanted

    # -- records -----------------------------------------------------------------------------
    def _meter(self, part: _Partition, meter_id: str, state: Table) -> _Meter:
        meter = part.meters.get(meter_id)
        if meter is None:
            raw = state.get(meter_id.encode())
            history = state.get(history_key(meter_id)) if raw else None
            meter_state, windows = self._decode_meter(meter_id, raw, history)
            meter = part.meters[meter_id] = _loaded(meter_state, windows)
        return meter

    def _decode_meter(
        self, meter_id: str, raw: bytes | None, history: bytes | None
    ) -> tuple[MeterState, MeterWindows]:
        if not raw:
            return MeterState(), MeterWindows(self.window_config)
        meter_state = MeterState.from_parts(raw, history)
        if not meter_state.windows:
            return meter_state, MeterWindows(self.window_config)
        try:
            return meter_state, MeterWindows.from_bytes(meter_state.windows, self.window_config)
        except WindowStateError as exc:
            # The window settings changed: open windows of the old size cannot continue.
            log.error(
                "meter_id=%s: %s; its open windows are dropped and its model restarts",
                meter_id,
                exc,
            )
            self.metrics.model_resets.labels("window_settings_changed").inc()
            return MeterState(), MeterWindows(self.window_config)

    def apply_reading(
        self,
        partition: int,
        offset: int,
        value: bytes,
        *,
        append_ms: int,
        state: Table,
        snapshots: Table,
        topic: str,
    ) -> list[Output]:
        """Apply one reading (raises schemas DecodeError for the agent to dead-letter)."""
        record = self._readings.decode(value, topic=topic, partition=partition, offset=offset)
        part = self._parts[partition]
        meter_id: str = record["meter_id"]
        meter = self._meter(part, meter_id, state)
        point = ReadingPoint(
            ts_us=record["ts"],
            power_w=record["power_w"],
            append_ms=append_ms,
            offset=offset,
            voltage_v=(record["voltage_l1_v"], record["voltage_l2_v"], record["voltage_l3_v"]),
            current_a=(record["current_l1_a"], record["current_l2_a"], record["current_l3_a"]),
        )
        result = meter.windows.add(point)
        meter.dirty = True
        if result.outcome == "late":
            self.metrics.late_readings.inc()
        elif result.outcome == "duplicate":
            self.metrics.duplicate_readings.inc()
        outputs = self._score(part, meter_id, meter, result.closed, snapshots)
        if meter.windows.open_window_starts:
            part.idle.add(meter_id)
        else:
            part.idle.discard(meter_id)
        part.applied = offset
        return outputs

    def apply_tick(
        self, partition: int, offset: int, append_ms: int, snapshots: Table
    ) -> list[Output]:
        """A tick: close the windows of meters that have been silent long enough (arrival time)."""
        part = self._parts[partition]
        outputs: list[Output] = []
        for meter_id in sorted(part.idle):  # sorted: the same log gives the same output order
            meter = part.meters[meter_id]
            closed = meter.windows.on_tick(append_ms, offset)
            if closed:
                meter.dirty = True
                self.metrics.idle_flushes.inc()
                outputs.extend(self._score(part, meter_id, meter, closed, snapshots))
            if not meter.windows.open_window_starts:
                part.idle.discard(meter_id)
        part.applied = offset
        return outputs

    def skip(self, partition: int, offset: int) -> None:
        """A record that is consumed but not applied (a dead letter): the position still moves."""
        self._parts[partition].applied = offset

    # -- scoring -----------------------------------------------------------------------------
    def _score(
        self,
        part: _Partition,
        meter_id: str,
        meter: _Meter,
        closed: list[ClosedWindow],
        snapshots: Table,
    ) -> list[Output]:
        outputs = []
        for window in closed:
            started = time.perf_counter()
            features = compute_features(window, self.feature_spec)
            values = vector(features, self.feature_spec)
            model = self._model(meter_id, meter.state, snapshots)
            if meter.state.windows_total == 0 and meter.state.snapshot_seq == 0:
                meter.snapshot_windows = 0  # a new (or reset) model: older snapshots don't count
            result = model.process(values, self.feature_spec.names)
            state = meter.state
            state.windows_total += 1
            payload = self._scores.encode(self._score_record(meter_id, window, features, result))
            # The outbox is trimmed at the flush (flush_partition): scores of recent batches
            # are all kept.
            state.add_window(
                window.start_us,
                values,
                OutboxEntry(window.start_us, window.closed_by_offset, payload),
            )
            meter.history_dirty = True
            outputs.append(Output(meter_id, window.start_us, payload))
            if state.windows_total % self.snapshot_every == 0:
                meter.snapshot_due = True
            if meter.snapshot_due:
                self._maybe_snapshot(
                    part, meter_id, meter, model=model, window=window, snapshots=snapshots
                )
            self.metrics.windows_scored.inc()
            if result.is_anomaly:
                self.metrics.anomalies.inc()
            self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        return outputs

    def _score_record(
        self, meter_id: str, window: ClosedWindow, features: dict[str, float], result: ScoreResult
    ) -> AnomalyScoreRecord:
        config = self.model_config
        return {
            "meter_id": meter_id,
            "model_id": self.model_id,
            "window_start": window.start_us,
            "window_end": window.end_us,
            "n_readings": window.n,
            "features": features,
            "score": result.score,
            "threshold": result.threshold,
            "is_anomaly": result.is_anomaly,
            "attribution": result.attribution,
            "model": {
                "engine": config.engine,
                "num_trees": config.num_trees,
                "sample_size": config.sample_size,
                "shingle_size": config.shingle_size,
                "feature_names": list(self.feature_spec.names),
                "threshold_kind": config.threshold,
            },
            # Event time, not wall time: the same input gives the same record, value for value.
            "scored_at": window.end_us,
        }

    def _maybe_snapshot(
        self,
        part: _Partition,
        meter_id: str,
        meter: _Meter,
        *,
        model: MeterModel,
        window: ClosedWindow,
        snapshots: Table,
    ) -> None:
        """Take the due snapshot if no state that a crash could bring back would lose its own.

        The manifest keeps two snapshots; a new one drops the older. Any state that may be
        restored after a crash (the last one Kafka acknowledged, or one written since) must
        still find a snapshot that is not ahead of it, so a new snapshot waits until the state
        covering the latest one is acknowledged. When windows close faster than that (a replay,
        or a restart that replays past a snapshot taken before the crash), the meter asks for a
        flush instead, which also keeps its history (vectors, outbox) small.
        """
        latest = meter.snapshot_windows
        if latest is None:
            record = read_manifests(snapshots, meter_id)
            latest = meter.snapshot_windows = record.latest.windows_seen if record else 0
        if latest <= meter.durable_windows:
            self._snapshot(meter_id, meter.state, model, window, snapshots)
            meter.snapshot_windows = meter.state.windows_total
            meter.snapshot_due = False
        elif meter.flushed_windows < latest:
            part.flush_wanted = True
        # else: the covering state is written; its acknowledgement comes within milliseconds.

    def acknowledged(self, partition: int) -> None:
        """Kafka acknowledged every state write of this partition's flushes so far."""
        part = self._parts.get(partition)
        if part is None:
            return
        for meter, windows in part.unacknowledged:
            meter.durable_windows = max(meter.durable_windows, windows)
        part.unacknowledged.clear()

    def _snapshot(
        self,
        meter_id: str,
        state: MeterState,
        model: MeterModel,
        window: ClosedWindow,
        snapshots: Table,
    ) -> None:
        blob = model.snapshot()
        previous = read_manifests(snapshots, meter_id)

        def manifest_for(seq: int, chunk_count: int, sha256: str) -> Manifest:
            return Manifest(
                seq=seq,
                chunk_count=chunk_count,
                sha256=sha256,
                last_window_start_us=window.start_us,
                fingerprint=self.model_config.fingerprint(),
                windows_seen=state.windows_total,
            )

        manifest = write_snapshot(snapshots, meter_id, blob, manifest_for)
        state.snapshot_seq = manifest.seq
        # Keep the vectors since the snapshot *before* this one: if this snapshot's manifest is
        # lost in a crash, the previous one plus these vectors still rebuilds the model.
        keep_after = previous.latest.last_window_start_us if previous else None
        if keep_after is not None:
            state.vectors = [(s, v) for s, v in state.vectors if s > keep_after]
        self.metrics.snapshots.inc()
        self.metrics.snapshot_bytes.observe(len(blob))

    def _model(self, meter_id: str, state: MeterState, snapshots: Table) -> MeterModel:
        model = self._models.get(meter_id)
        if model is not None and model.windows_seen == state.windows_total:
            self._models.move_to_end(meter_id)
            return model
        model = self._restore(meter_id, state, snapshots)
        self._models[meter_id] = model
        while len(self._models) > self.model_cache:
            self._models.popitem(last=False)
        return model

    def _restore(self, meter_id: str, state: MeterState, snapshots: Table) -> MeterModel:
        """The meter's model as of ``state.windows_total`` windows: snapshot plus replay."""
        record = read_manifests(snapshots, meter_id)
        candidates = [
            m for m in ((record.latest, record.previous) if record else ()) if m is not None
        ]
        for manifest in candidates:
            newer = [(s, v) for s, v in state.vectors if s > manifest.last_window_start_us]
            # The history may hold windows the hot value has not counted yet (written ahead of
            # it before a crash): the model has seen exactly windows_total windows.
            needed = state.windows_total - manifest.windows_seen
            if needed < 0 or len(newer) < needed:
                continue  # this snapshot is not in step with the state (e.g. written after it)
            newer = newer[:needed]
            try:
                model = MeterModel.restore(
                    read_snapshot(snapshots, meter_id, manifest), self.model_config, self._scaler
                )
            except ModelMismatchError:
                log.error(
                    "meter_id=%s: model settings changed since its snapshot; starting a NEW model "
                    "(model_id %s). Use `meterstream worker reset` to drop old state on purpose.",
                    meter_id,
                    self.model_id,
                )
                self.metrics.model_resets.labels("settings_changed").inc()
                return self._fresh(state)
            except SnapshotCorrupt as exc:
                log.warning("meter_id=%s: %s; trying an older snapshot", meter_id, exc)
                continue
            for _, values in newer:
                model.process(values, self.feature_spec.names)
            self.metrics.model_restores.inc()
            return model
        if len(state.vectors) < state.windows_total:
            log.error(
                "meter_id=%s: no snapshot matches its state (%d windows); starting a new model",
                meter_id,
                state.windows_total,
            )
            self.metrics.model_resets.labels("no_snapshot").inc()
            return self._fresh(state)
        # No snapshot yet: every window is still in the state, replay those the model has seen.
        model = MeterModel(self.model_config, self._scaler)
        for _, values in state.vectors[: state.windows_total]:
            model.process(values, self.feature_spec.names)
        return model

    def _fresh(self, state: MeterState) -> MeterModel:
        state.windows_total = 0
        state.vectors = []
        state.snapshot_seq = 0
        return MeterModel(self.model_config, self._scaler)

    # -- writing ------------------------------------------------------------------------------
    def flush_partition(self, partition: int, state: Table) -> int:
        """Write every changed meter of the partition, then its applied offset; returns bytes."""
        part = self._parts[partition]
        written = 0
        keep_after = part.flush_marks[0] if len(part.flush_marks) == part.flush_marks.maxlen else -1
        for meter_id, meter in part.meters.items():
            if not meter.dirty:
                continue
            if meter.history_dirty:
                # Before the hot value: after a crash the history may be ahead, never behind.
                meter.state.trim_outbox(self.outbox_size, keep_after)
                history = meter.state.history_bytes()
                state[history_key(meter_id)] = history
                written += len(history)
                meter.history_dirty = False
                self.metrics.history_bytes.observe(len(history))
            meter.flushed_windows = meter.state.windows_total
            part.unacknowledged.append((meter, meter.state.windows_total))
            meter.state.windows = meter.windows.to_bytes()
            value = meter.state.hot_bytes()
            state[meter_id.encode()] = value
            written += len(value)
            meter.dirty = False
            self.metrics.state_bytes.observe(len(value))
        if part.applied is not None:
            # Last: in the changelog it follows the states it covers (one partition, one producer).
            state[applied_key(partition)] = str(part.applied).encode()
            part.flush_marks.append(part.applied)
        part.flush_wanted = False
        fault_point("after_state_write")
        return written
