"""Binary layout of :class:`~streams.core.windowing.MeterWindows` state: versioned, little-endian.

Kept apart from the windowing logic so the format is read in one place. The state is written
to the worker's table once per batch and to its changelog, so it is packed tightly:

``header``  version u8 | delta width u8 (4 or 8) | windows u16 | size_us, watermark,
            closed_up_to, last_append_ms: 4 x i64
``window``  start i64 | n u32 | current-present mask u8 | voltage sums (mV) 3 x i64 |
            voltage counts 3 x u32 | current max 3 x f64 (0.0 where absent)
            then n ``ts - start`` offsets (u32 while the window size fits, else i64)
            then n powers f64

That is 36 + 73 per window + 12 per reading bytes: ≈0.5 KB for a 60 s window at a 2 s cadence.

>>> data = encode_state(60, 5, -1, 7, [(0, [5], [1.5], [0, 0, 0], [0, 0, 0], [None, 2.0, None])])
>>> len(data), decode_state(data, 60).windows[0][5]
(121, [None, 2.0, None])
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["WindowStateError", "WindowTuple", "decode_state", "encode_state"]

_VERSION = 1
_HEADER = struct.Struct("<BBHqqqq")
_WINDOW = struct.Struct("<qIB3q3I3d")
_U32_LIMIT = 1 << 32

# start, sorted ts, powers, voltage sums in mV, voltage counts, current max per phase
WindowTuple = tuple[int, list[int], list[float], list[int], list[int], list[float | None]]


class WindowStateError(ValueError):
    """Stored window state can't be used (corrupt, another format version, or another window
    size). The worker should log it with the meter id, count it and start the meter afresh."""


class DecodedState(NamedTuple):
    watermark: int
    closed_up_to: int
    last_append: int
    windows: list[WindowTuple]


def encode_state(
    size_us: int, watermark: int, closed_up_to: int, last_append: int, windows: list[WindowTuple]
) -> bytes:
    """Pack a state; ``windows`` must be in start order."""
    wide = size_us > _U32_LIMIT
    code = "q" if wide else "I"
    parts = [
        _HEADER.pack(
            _VERSION, 8 if wide else 4, len(windows), size_us, watermark, closed_up_to, last_append
        )
    ]
    for start, ts, power, vsum, vcount, imax in windows:
        n = len(ts)
        mask = (imax[0] is not None) | (imax[1] is not None) << 1 | (imax[2] is not None) << 2
        parts.append(
            _WINDOW.pack(start, n, mask, *vsum, *vcount, *[0.0 if a is None else a for a in imax])
        )
        parts.append(struct.pack(f"<{n}{code}", *[t - start for t in ts]))
        parts.append(struct.pack(f"<{n}d", *power))
    return b"".join(parts)


def decode_state(data: bytes, size_us: int) -> DecodedState:
    """Unpack a state written for windows of ``size_us``; raises :class:`WindowStateError`."""
    try:
        version, width, count, stored_size, wm, closed, last = _HEADER.unpack_from(data, 0)
        if version != _VERSION:
            raise WindowStateError(f"window state version {version}, expected {_VERSION}")
        if stored_size != size_us:
            raise WindowStateError(
                f"window state was written for size_us={stored_size}, configured {size_us}"
            )
        code = "q" if width == 8 else "I"
        offset = _HEADER.size
        windows: list[WindowTuple] = []
        for _ in range(count):
            start, n, mask, v1, v2, v3, c1, c2, c3, a1, a2, a3 = _WINDOW.unpack_from(data, offset)
            offset += _WINDOW.size
            deltas = struct.unpack_from(f"<{n}{code}", data, offset)
            offset += n * width
            power = list(struct.unpack_from(f"<{n}d", data, offset))
            offset += n * 8
            imax = [a1 if mask & 1 else None, a2 if mask & 2 else None, a3 if mask & 4 else None]
            ts = [start + d for d in deltas]
            windows.append((start, ts, power, [v1, v2, v3], [c1, c2, c3], imax))
    except struct.error as exc:
        raise WindowStateError(f"corrupt window state ({len(data)} bytes): {exc}") from exc
    if offset != len(data):
        raise WindowStateError(f"corrupt window state: {len(data) - offset} trailing bytes")
    return DecodedState(wm, closed, last, windows)
