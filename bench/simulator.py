"""How fast the household simulator generates Reading dicts, on one core.

Usage::

    python bench/simulator.py            # 1,000,000 readings per meter count, best of 3
    python bench/simulator.py --smoke    # 50,000 readings, once: CI checks that it runs

Times ``HouseholdSimulator.batches`` with its default batch size and every anomaly kind on,
for 5, 100 and 1000 meters at 2 s steps. Startup (construction and the first batch, which
plans the first local day for every meter) is reported apart from the steady rate, which
still includes planning each following day. Only generation is timed: no encoding, no Kafka. The targets are
100,000 readings/s for 5 meters and 200,000 readings/s for 100 or more, so the connector keeps
50,000 readings/s with Avro encoding and the producer on top.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import numpy as np

from connector.simulator import HouseholdSimulator

START_US = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00, Europe/Oslo
METER_COUNTS = (5, 100, 1000)


def target_for(meters: int) -> int:
    return 100_000 if meters < 100 else 200_000


def _measure(meters: int, readings: int, repeats: int) -> tuple[float, float]:
    """(startup seconds, readings/s after startup), best of ``repeats``.

    Startup is construction plus the first batch, which plans the first day for every meter.
    """
    best_startup, best_per_reading = float("inf"), float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        sim = HouseholdSimulator(meters, start_us=START_US, seed=42)
        batches = sim.batches()
        next(batches)
        warm = time.perf_counter()
        made = 0
        for batch in batches:
            made += len(batch)
            if made >= readings:
                break
        best_per_reading = min(best_per_reading, (time.perf_counter() - warm) / made)
        best_startup = min(best_startup, warm - started)
    return best_startup, 1.0 / best_per_reading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--readings", type=int, default=1_000_000, help="readings per timed run")
    args = parser.parse_args(argv)
    readings, repeats = (50_000, 1) if args.smoke else (args.readings, 3)
    print(
        f"simulator benchmark: {readings:,} readings per run, best of {repeats}; Python"
        f" {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"{'meters':>6} {'startup s':>9} {'readings/s':>12} {'target':>9}")
    verdicts: list[str] = []
    for meters in METER_COUNTS:
        startup, rate = _measure(meters, max(readings, meters), repeats)
        target = target_for(meters)
        verdict = "meets" if rate >= target else "BELOW"
        verdicts.append(f"{meters} meters {rate:,.0f}/s ({verdict})")
        print(f"{meters:>6} {startup:>9.2f} {rate:>12,.0f} {target:>9,}")
    print(
        "summary: "
        + "; ".join(verdicts)
        + "; targets 100,000/s (5 meters), 200,000/s (100+)"
        + (" [smoke run: numbers are not meaningful]" if args.smoke else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
