"""How fast the message codec encodes and decodes Readings, on one core.

Usage::

    python bench/codec.py            # 50,000 records per run, best of 3 runs
    python bench/codec.py --smoke    # a few hundred records: CI checks that it runs

Measures a typical Reading with only the required fields set ("sparse", what a Pulse IR meter
sends between its 10-second voltage frames) and with every nullable field set ("full"), in both
framings: single-object (no registry) and Confluent (with an in-memory registry, no HTTP).
A last row decodes records of a newer schema version (one extra optional field), which goes
through fastavro's schema resolution: the cost a reader pays during a rolling upgrade.
The target is 100,000 encodes/s and decodes/s on one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from schemas.codec import AvroCodec
from schemas.loader import current_schema, load_history

TARGET_PER_SECOND = 100_000

SPARSE: dict[str, Any] = {
    "meter_id": "5b8a9a4e-6a52-4b0e-9d0f-3c1e2f7a8b90",
    "source": "tibber",
    "ts": 1_733_356_800_000_000,
    "ts_offset_minutes": 60,
    "received_at": 1_733_356_800_412_000,
    "power_w": 1834.0,
}
FULL_VALUES = {"double": 231.7, "int": -67, "string": "NOK"}
FULL: dict[str, Any] = {
    **SPARSE,
    **{
        field["name"]: FULL_VALUES[field["type"][1]]
        for field in current_schema("Reading")["fields"]
        if field["name"] not in SPARSE
    },
}


_EXTRA_FIELD = {"name": "frequency_hz", "type": ["null", "double"], "default": None}


class _InMemoryRegistry:
    """Just enough registry for Confluent framing without a server."""

    def __init__(self) -> None:
        self._schemas: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema_json: str) -> int:
        self._schemas[1] = json.loads(schema_json)
        return 1

    def set_compatibility(self, subject: str, level: str) -> None:
        pass

    def schema_for_id(self, schema_id: int) -> dict[str, Any]:
        return self._schemas[schema_id]


def _rate(operation: Callable[[], object], count: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            operation()
        best = min(best, time.perf_counter() - started)
    return count / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--count", type=int, default=50_000, help="records per timed run")
    args = parser.parse_args(argv)
    count, repeats = (300, 1) if args.smoke else (args.count, 3)

    codecs = {
        "single-object": AvroCodec.for_schema("Reading"),
        "confluent": AvroCodec.for_schema(
            "Reading", registry=_InMemoryRegistry(), subject="meter.readings.v1-value"
        ),
    }
    print(
        f"codec benchmark: {count:,} records per run, best of {repeats}; Python"
        f" {platform.python_version()}, fastavro {version('fastavro')}"
    )
    print(f"{'framing':<14} {'record':<7} {'bytes':>5} {'encode/s':>10} {'decode/s':>10}")
    encode_rates: list[float] = []
    decode_rates: list[float] = []
    for framing, codec in codecs.items():
        for label, record in (("sparse", SPARSE), ("full", FULL)):
            data = codec.encode(record)
            assert codec.decode(data)["power_w"] == record["power_w"]
            encode_rate = _rate(lambda: codec.encode(record), count, repeats)  # noqa: B023
            decode_rate = _rate(lambda: codec.decode(data), count, repeats)  # noqa: B023
            encode_rates.append(encode_rate)
            decode_rates.append(decode_rate)
            print(
                f"{framing:<14} {label:<7} {len(data):>5} {encode_rate:>10,.0f} {decode_rate:>10,.0f}"
            )

    reading = current_schema("Reading")
    newer = {**reading, "fields": [*reading["fields"], _EXTRA_FIELD]}
    history = load_history().with_release("Reading", newer)
    reader = AvroCodec(reading, history=history)
    data = AvroCodec(newer, history=history).encode(FULL)
    resolved_rate = _rate(lambda: reader.decode(data), count, repeats)
    print(f"{'newer version':<14} {'full':<7} {len(data):>5} {'-':>10} {resolved_rate:>10,.0f}")

    def verdict(rate: float) -> str:
        return "meets" if rate >= TARGET_PER_SECOND else "BELOW"

    slowest_encode, slowest_decode = min(encode_rates), min(decode_rates)
    print(
        f"summary: slowest encode {slowest_encode:,.0f}/s ({verdict(slowest_encode)} target),"
        f" slowest decode {slowest_decode:,.0f}/s ({verdict(slowest_decode)} target);"
        f" target {TARGET_PER_SECOND:,}/s on one core; newer-version decode {resolved_rate:,.0f}/s"
        + (" [smoke run: numbers are not meaningful]" if args.smoke else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
