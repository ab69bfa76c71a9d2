"""Model snapshots in the ``meter-snapshots`` table: chunks, then a manifest, then cleanup.

A compressed model (100 to 300 KB) does not fit one Kafka record, so it is cut into chunks keyed
``(meter, seq, i)``. The manifest (key ``(meter, "manifest")``) is written last and names the
newest complete snapshot *and the one before it*; the chunks of the snapshot before that are then
tombstoned. A crash mid-snapshot leaves the previous manifest in force, and the meter's state
keeps the feature vectors since the previous snapshot, so either manifest plus a replay rebuilds
the exact model. Both tables' writes land in the meter's partition, so they move together.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import msgpack

from meterstream.faults import fault_point
from schemas.topics import SNAPSHOT_CHUNK_BYTES
from streams.core.snapshot import Manifest, SnapshotCorrupt, join, split

log = logging.getLogger(__name__)

Table = MutableMapping[bytes, bytes]


def _chunk_key(meter_id: str, seq: int, index: int) -> bytes:
    return f"{meter_id}\x00{seq}\x00{index}".encode()


def _manifest_key(meter_id: str) -> bytes:
    return f"{meter_id}\x00manifest".encode()


@dataclass(frozen=True)
class ManifestRecord:
    latest: Manifest
    previous: Manifest | None

    def to_bytes(self) -> bytes:
        return bytes(
            msgpack.packb(
                [self.latest.to_bytes(), self.previous.to_bytes() if self.previous else None],
                use_bin_type=True,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ManifestRecord:
        latest, previous = msgpack.unpackb(data, raw=False)
        return cls(Manifest.from_bytes(latest), Manifest.from_bytes(previous) if previous else None)


def read_manifests(table: Table, meter_id: str) -> ManifestRecord | None:
    data = table.get(_manifest_key(meter_id))
    return ManifestRecord.from_bytes(data) if data else None


def write_snapshot(
    table: Table,
    meter_id: str,
    blob: bytes,
    manifest_for: Callable[[int, int, str], Manifest],
) -> Manifest:
    """Write ``blob`` as the meter's next snapshot; returns its manifest.

    ``manifest_for(seq, chunk_count, sha256)`` builds the manifest (the caller knows the window
    and model fingerprint it covers).
    """
    record = read_manifests(table, meter_id)
    seq = (record.latest.seq if record else 0) + 1
    chunks = split(blob, SNAPSHOT_CHUNK_BYTES)
    for index, chunk in enumerate(chunks):
        table[_chunk_key(meter_id, seq, index)] = chunk
        if index == len(chunks) // 2:
            fault_point("mid_snapshot")
    manifest = manifest_for(seq, len(chunks), hashlib.sha256(blob).hexdigest())
    table[_manifest_key(meter_id)] = ManifestRecord(
        manifest, record.latest if record else None
    ).to_bytes()
    fault_point("after_manifest")
    if record is not None and record.previous is not None:
        stale = record.previous
        for index in range(stale.chunk_count):
            # Tombstones: compaction drops the snapshot nobody can fall back to any more.
            table.pop(_chunk_key(meter_id, stale.seq, index), None)
    return manifest


def read_snapshot(table: Table, meter_id: str, manifest: Manifest) -> bytes:
    """The blob of one snapshot; SnapshotCorrupt if a chunk is missing or the checksum fails."""
    chunks = []
    for index in range(manifest.chunk_count):
        chunk = table.get(_chunk_key(meter_id, manifest.seq, index))
        if chunk is None:
            raise SnapshotCorrupt(
                f"meter_id={meter_id} snapshot {manifest.seq}: chunk {index} missing"
            )
        chunks.append(chunk)
    return join(chunks, manifest)


def delete_all(table: Table, meter_id: str) -> None:
    """Tombstone every snapshot of a meter (used by `meterstream worker reset`)."""
    record = read_manifests(table, meter_id)
    if record is None:
        return
    for manifest in (record.latest, record.previous):
        if manifest is not None:
            for index in range(manifest.chunk_count):
                table.pop(_chunk_key(meter_id, manifest.seq, index), None)
    table.pop(_manifest_key(meter_id), None)
    log.info("meter_id=%s: snapshots deleted", meter_id)
