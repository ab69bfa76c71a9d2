"""Both RCF engines side by side at the default model config, on the same stream.

Usage::

    python -m bench.detector            # aws: 15,000 warm + 5,000 timed points; rrcf: 300 + 300
    python -m bench.detector --smoke    # tiny run: CI checks that it runs

The stream is one simulated household (``HouseholdSimulator``, 5 s readings) through the real
windowing, default features (Europe/Oslo time of day) and ``OnlineScaler``: the 8-dimensional
vectors the worker feeds its forests. Both engines get the same vectors and the default
parameters (30 trees x 128 samples, shingle 2, warm-up 128); after a warm-up stretch the timed
loop does score-then-learn per point, as the model does. Then per engine: the snapshot raw and
zlib-compressed (level 6, as ``MeterModel.snapshot``), the time to snapshot and to restore, and
for aws the resident memory per forest (RSS growth over 10 forests in a child process). The
summary prints the aws/rrcf speed ratio; the target is aws >= 150x rrcf at the default config.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from connector.simulator import HouseholdSimulator
from streams.core.detector import DetectorParams
from streams.core.features import FeatureSpec, compute_features, vector
from streams.core.rcf_aws import AwsRcf
from streams.core.rcf_reference import ReferenceRcf
from streams.core.scaling import OnlineScaler
from streams.core.types import ReadingPoint, WindowConfig
from streams.core.windowing import MeterWindows

START_US = 1_767_222_000_000_000  # 2026-01-01T00:00+01:00, Europe/Oslo
SPEC = FeatureSpec(tz="Europe/Oslo")
TARGET_RATIO = 150
Engine = Callable[[], AwsRcf | ReferenceRcf]


def stream(windows: int, seed: int = 3) -> list[list[float]]:
    """Scaled default-feature vectors of ``windows`` 60 s windows of one simulated meter."""
    sim = HouseholdSimulator(1, start_us=START_US, interval_s=5.0, seed=seed)
    meter = MeterWindows(WindowConfig())
    scaler = OnlineScaler(len(SPEC.names), std_floor=SPEC.std_floors())
    out: list[list[float]] = []
    for batch in sim.batches(end_us=START_US + (windows + 1) * 60_000_000):
        for r in batch:
            point = ReadingPoint(
                r["ts"],
                r["power_w"],
                r["ts"] // 1000,
                voltage_v=(r["voltage_l1_v"], r["voltage_l2_v"], r["voltage_l3_v"]),
                current_a=(r["current_l1_a"], r["current_l2_a"], r["current_l3_a"]),
            )
            for window in meter.add(point).closed:
                x = vector(compute_features(window, SPEC), SPEC)
                out.append(scaler.transform(x))
                scaler.learn_one(x)
    return out[:windows]


def measure(make: Engine, points: list[list[float]], warm: int) -> dict[str, float]:
    det = make()
    for x in points[:warm]:
        det.learn_one(x)
    timed = points[warm:]
    started = time.perf_counter()
    for x in timed:
        det.score_one(x)
        det.learn_one(x)
    rate = len(timed) / (time.perf_counter() - started)
    started = time.perf_counter()
    raw = det.to_bytes()
    packed = zlib.compress(raw, 6)
    snap_s = time.perf_counter() - started
    started = time.perf_counter()
    clone = type(det).from_bytes(zlib.decompress(packed))
    restore_s = time.perf_counter() - started
    assert clone.score_one(points[0]) == det.score_one(points[0]), "restore changed the score"
    return {
        "points_per_s": rate,
        "raw_kb": len(raw) / 1000,
        "zlib_kb": len(packed) / 1000,
        "snapshot_ms": snap_s * 1000,
        "restore_ms": restore_s * 1000,
    }


def memory_child(forests: int, path: str) -> None:
    """Print the RSS growth per default aws forest after learning the vectors in ``path``.

    Runs in a fresh process that has allocated little else, so freed simulator memory is not
    reused by the forests and hidden from the count.
    """
    data = json.loads(Path(path).read_text())

    def rss() -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))

    before, kept = rss(), []
    for seed in range(forests):
        det = AwsRcf(len(SPEC.names), seed=seed)
        for x in data:
            det.learn_one(x)
        kept.append(det)
    print(json.dumps({"bytes_per_forest": (rss() - before) / forests}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return 0
    # aws learns ~10 days first: krcf's point store keeps growing for days as the trees'
    # samples spread out, so a short warm-up would understate the state per meter. rrcf only
    # needs its FIFO sample filled (it is ~150x slower).
    aws_warm, aws_points, rrcf_warm, rrcf_points, forests = (
        (150, 300, 150, 40, 2) if args.smoke else (15_000, 5_000, 300, 300, 10)
    )
    params = DetectorParams(len(SPEC.names))
    print(
        f"detector benchmark: {params}; aws {aws_points:,} timed points after {aws_warm:,}, "
        f"rrcf {rrcf_points} after {rrcf_warm}; Python {platform.python_version()}"
    )
    points = stream(aws_warm + aws_points)
    # Both engines' constructor defaults are DetectorParams' defaults: the model's defaults.
    results = {
        "aws": measure(lambda: AwsRcf(params.dimensions, seed=1), points, aws_warm),
        "rrcf": measure(
            lambda: ReferenceRcf(params.dimensions, seed=1),
            points[: rrcf_warm + rrcf_points],
            rrcf_warm,
        ),
    }
    print(
        f"{'engine':>6} {'points/s':>10} {'raw KB':>8} {'zlib KB':>8} {'snap ms':>8} {'restore ms':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:>6} {r['points_per_s']:>10,.0f} {r['raw_kb']:>8,.0f} {r['zlib_kb']:>8,.0f}"
            f" {r['snapshot_ms']:>8.1f} {r['restore_ms']:>10.1f}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.json"
        path.write_text(json.dumps(points[:aws_warm]))
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(forests), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
    resident_kb = json.loads(child.stdout)["bytes_per_forest"] / 1000
    ratio = results["aws"]["points_per_s"] / results["rrcf"]["points_per_s"]
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(
        f"summary: aws/rrcf = {ratio:,.0f}x ({verdict} target {TARGET_RATIO}x); aws per meter "
        f"after {aws_warm + aws_points:,} windows: {results['aws']['zlib_kb']:.0f} KB zlib "
        f"snapshot (budget 300 KB), ~{resident_kb:.0f} KB resident"
        + (" [smoke run: numbers are not meaningful]" if args.smoke else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
