"""Byte framing and chunking for model snapshots (pure: no I/O, no clock).

A model snapshot is one blob (see :mod:`streams.core.model`); at the default model it is
about 100 KB, but larger forests or the rrcf reference engine easily pass the 1 MB default
Kafka record limit. The worker therefore writes a snapshot as raw chunks keyed
``(meter, seq, i)`` and then, last, a :class:`Manifest` naming the chunk count and the
blob's sha256. A reader trusts only a manifest: :func:`join` refuses chunks that do not add
up to it, so a crash mid-write, a zombie writer or a shorter newer snapshot can never be
stitched into a mixed blob (review note 20).

:func:`pack` / :func:`unpack` are the length-prefixed framing the detectors and the model
use to put several byte sections into one blob.

>>> blob = bytes(range(256)) * 10
>>> chunks = split(blob, 1000)
>>> [len(c) for c in chunks]
[1000, 1000, 560]
>>> manifest = Manifest.for_blob(blob, seq=3, chunk_count=len(chunks), last_window_start_us=0,
...                              fingerprint="f" * 64, windows_seen=10)
>>> join(chunks, manifest) == blob
True
>>> Manifest.from_bytes(manifest.to_bytes()) == manifest
True
>>> unpack(pack([b"a", b"", b"xyz"]))
[b'a', b'', b'xyz']
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final

_LEN: Final = struct.Struct(">I")  # 4 GiB per section is far beyond any forest
MANIFEST_VERSION: Final = 1


class SnapshotCorrupt(ValueError):
    """Stored snapshot bytes do not match their manifest or framing: discard them and rebuild
    the model from the newest intact snapshot (or from scratch) and replay the inputs since."""


def pack(sections: Sequence[bytes]) -> bytes:
    """Concatenate byte sections, each prefixed by its 4-byte big-endian length."""
    out = bytearray(_LEN.pack(len(sections)))
    for section in sections:
        out += _LEN.pack(len(section))
        out += section
    return bytes(out)


def unpack(blob: bytes) -> list[bytes]:
    """The sections :func:`pack` put in; raises :class:`SnapshotCorrupt` on bad framing."""
    view = memoryview(blob)
    try:
        (count,) = _LEN.unpack_from(view, 0)
        at = _LEN.size
        sections: list[bytes] = []
        for _ in range(count):
            (size,) = _LEN.unpack_from(view, at)
            at += _LEN.size
            if at + size > len(view):
                raise SnapshotCorrupt(f"section of {size} bytes runs past the end of the blob")
            sections.append(bytes(view[at : at + size]))
            at += size
    except struct.error as exc:
        raise SnapshotCorrupt(f"truncated snapshot framing: {exc}") from exc
    if at != len(view):
        raise SnapshotCorrupt(f"{len(view) - at} trailing bytes after {count} sections")
    return sections


def split(blob: bytes, chunk_bytes: int) -> list[bytes]:
    """``blob`` cut into chunks of at most ``chunk_bytes`` (at least one chunk, maybe empty)."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    if not blob:
        return [b""]
    return [blob[i : i + chunk_bytes] for i in range(0, len(blob), chunk_bytes)]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a complete snapshot looks like; written after all of its chunks.

    ``seq`` numbers the meter's snapshots (chunks are keyed by it, so a new snapshot never
    overwrites the chunks of the one the manifest still points at). ``last_window_start_us``
    is the newest window the snapshot has learned: on recovery, replay only newer windows.
    ``fingerprint`` is the model config's (:meth:`ModelConfig.fingerprint`); ``windows_seen``
    counts the windows the model had processed.
    """

    seq: int
    chunk_count: int
    sha256: str
    last_window_start_us: int
    fingerprint: str
    windows_seen: int
    version: int = MANIFEST_VERSION

    @classmethod
    def for_blob(
        cls,
        blob: bytes,
        *,
        seq: int,
        chunk_count: int,
        last_window_start_us: int,
        fingerprint: str,
        windows_seen: int,
    ) -> Manifest:
        """The manifest of ``blob`` split into ``chunk_count`` chunks."""
        digest = hashlib.sha256(blob).hexdigest()
        return cls(seq, chunk_count, digest, last_window_start_us, fingerprint, windows_seen)

    def to_bytes(self) -> bytes:
        # JSON, not a struct: a manifest is tiny and operators read it with kcat.
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            fields = json.loads(data)
            manifest = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise SnapshotCorrupt(f"unreadable snapshot manifest: {exc}") from exc
        if manifest.version != MANIFEST_VERSION:
            raise SnapshotCorrupt(
                f"manifest version {manifest.version} is not {MANIFEST_VERSION}; "
                "reset the model state for this app id"
            )
        return manifest


def join(chunks: Sequence[bytes], manifest: Manifest) -> bytes:
    """Reassemble ``chunks`` (in index order) and check them against ``manifest``.

    Raises :class:`SnapshotCorrupt` if the count or the sha256 differs.

    >>> m = Manifest.for_blob(b"abcdef", seq=1, chunk_count=2, last_window_start_us=0,
    ...                       fingerprint="x", windows_seen=1)
    >>> join([b"abc", b"xyz"], m)
    Traceback (most recent call last):
    ...
    streams.core.snapshot.SnapshotCorrupt: snapshot seq 1: sha256 mismatch (chunks from another snapshot?)
    """
    if len(chunks) != manifest.chunk_count:
        raise SnapshotCorrupt(
            f"snapshot seq {manifest.seq}: {len(chunks)} chunks, manifest says {manifest.chunk_count}"
        )
    blob = b"".join(chunks)
    if hashlib.sha256(blob).hexdigest() != manifest.sha256:
        raise SnapshotCorrupt(
            f"snapshot seq {manifest.seq}: sha256 mismatch (chunks from another snapshot?)"
        )
    return blob
