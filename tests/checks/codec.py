"""Checks for the snapshot codec: chunking a model snapshot for the changelog and back."""

from __future__ import annotations

import pytest

from streams.core.model import MeterModel, ModelConfig
from streams.core.snapshot import Manifest, SnapshotCorrupt, join, pack, split, unpack
from tests.checks.common import spiky_stream
from tests.checks.registry import DIMS, FOREST, NAMES, Estimator


def _blob() -> bytes:
    model = MeterModel(ModelConfig(feature_names=NAMES, threshold_warm_up=5, **FOREST))
    for x in spiky_stream(40, DIMS, seed=1, start_spikes=20)[0]:
        model.process(x, NAMES)
    return model.snapshot()


def _encode(blob: bytes, chunk_bytes: int, seq: int = 1) -> tuple[list[bytes], Manifest]:
    chunks = split(blob, chunk_bytes)
    manifest = Manifest.for_blob(
        blob,
        seq=seq,
        chunk_count=len(chunks),
        last_window_start_us=123,
        fingerprint="f" * 64,
        windows_seen=40,
    )
    return chunks, Manifest.from_bytes(manifest.to_bytes())


def check_round_trip(est: Estimator) -> None:
    size = est.make(0)
    for blob in (_blob(), b"", b"x", bytes(range(256)) * 3):
        chunks, manifest = _encode(blob, size)
        assert all(0 < len(c) <= size for c in chunks) or blob == b""
        assert join(chunks, manifest) == blob
    restored = MeterModel.restore(
        join(*_encode(_blob(), size)),
        ModelConfig(feature_names=NAMES, threshold_warm_up=5, **FOREST),
    )
    assert restored.windows_seen == 40


def check_refuses_missing_extra_or_mixed_chunks(est: Estimator) -> None:
    size = est.make(0)
    blob = _blob()
    chunks, manifest = _encode(blob, size)
    other, _ = _encode(blob[::-1], size, seq=2)  # same length, different bytes
    for bad in (chunks[:-1], [*chunks, b"x"], [other[0], *chunks[1:]], chunks[::-1]):
        if bad == chunks:
            continue  # a single-chunk snapshot reversed is itself
        with pytest.raises(SnapshotCorrupt):
            join(bad, manifest)


def check_manifest_rejects_garbage(est: Estimator) -> None:
    for bad in (b"", b"{", b'{"seq": 1}', b'{"version": 99}'):
        with pytest.raises(SnapshotCorrupt):
            Manifest.from_bytes(bad)


def check_pack_round_trip_and_truncation(est: Estimator) -> None:
    sections = [b"", b"a" * est.make(0), b"xyz"]
    blob = pack(sections)
    assert unpack(blob) == sections
    for bad in (blob[:-1], blob + b"\0", blob[:3]):
        with pytest.raises(SnapshotCorrupt):
            unpack(bad)
    with pytest.raises(ValueError, match="chunk_bytes"):
        split(blob, 0)


CHECKS = (
    check_round_trip,
    check_refuses_missing_extra_or_mixed_chunks,
    check_manifest_rejects_garbage,
    check_pack_round_trip_and_truncation,
)
