"""Ground truth: which meter had which injected anomaly when, one JSON object per line.

A label's span is half-open, ``[start, end)``: exactly the readings whose ``ts`` falls inside
it carry the injected effect. Times are ISO-8601 in UTC (``Z``), with microseconds when not
zero, so a label round-trips exactly.

>>> label = AnomalyLabel("sim-0001", 1_774_746_000_000_000, 1_774_746_300_000_000, "voltage_sag")
>>> label.to_json()
'{"meter_id": "sim-0001", "start": "2026-03-29T01:00:00Z", "end": "2026-03-29T01:05:00Z", "kind": "voltage_sag"}'
>>> import io
>>> buffer = io.StringIO()
>>> write_labels([label], buffer)
1
>>> read_labels(io.StringIO(buffer.getvalue())) == [label]
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from connector.simulator.anomalies import ANOMALY_KINDS, AnomalyKind
from schemas.timestamps import datetime_to_micros, micros_to_datetime


class SupportsWrite(Protocol):
    """A text file opened for writing, or anything with a compatible ``write``."""

    def write(self, text: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class AnomalyLabel:
    """One injected anomaly: ``kind`` on ``meter_id`` over ``[start_us, end_us)`` (UTC micros)."""

    meter_id: str
    start_us: int
    end_us: int
    kind: AnomalyKind

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ValueError(
                f"unknown anomaly kind {self.kind!r}; known: {', '.join(ANOMALY_KINDS)}"
            )
        if self.end_us <= self.start_us:
            raise ValueError(f"label for {self.meter_id} ends before it starts")

    def contains(self, ts_us: int) -> bool:
        """Whether a reading at ``ts_us`` lies inside the span."""
        return self.start_us <= ts_us < self.end_us

    def to_json(self) -> str:
        """One line of the labels file (no newline)."""
        return json.dumps(
            {
                "meter_id": self.meter_id,
                "start": _iso(self.start_us),
                "end": _iso(self.end_us),
                "kind": self.kind,
            }
        )

    @classmethod
    def from_json(cls, line: str) -> AnomalyLabel:
        """Parse one line written by :meth:`to_json`; raises ValueError saying what is wrong."""
        try:
            item = json.loads(line)
            return cls(
                meter_id=str(item["meter_id"]),
                start_us=datetime_to_micros(datetime.fromisoformat(item["start"])),
                end_us=datetime_to_micros(datetime.fromisoformat(item["end"])),
                kind=cast(AnomalyKind, item["kind"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an anomaly label: {line.strip()[:200]!r} ({exc!r})") from exc


def _iso(micros: int) -> str:
    return micros_to_datetime(micros).isoformat().replace("+00:00", "Z")


def read_labels(lines: Iterable[str]) -> list[AnomalyLabel]:
    """Labels from a text file object (or any iterable of lines); blank lines are skipped."""
    return [AnomalyLabel.from_json(line) for line in lines if line.strip()]


def write_labels(labels: Iterable[AnomalyLabel], fileobj: SupportsWrite) -> int:
    """Write one line per label to ``fileobj``; returns how many were written."""
    count = 0
    for label in labels:
        fileobj.write(label.to_json() + "\n")
        count += 1
    return count
