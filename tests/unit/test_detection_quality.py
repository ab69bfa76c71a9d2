"""Detection quality of the default meter model on the household simulator (pure core, no Kafka).

Readings go through the real windowing (:class:`streams.core.windowing.MeterWindows`, 60 s
windows), features (:mod:`streams.core.features`, the default spec in Europe/Oslo time) and
scaler (:class:`streams.core.scaling.OnlineScaler`) into one :class:`MeterModel` per meter at
the default config: 6 meters, 5 days, a reading every 5 s, both claimed kinds injected at 0.5
starts per meter-day each.

Per claimed kind the test checks a minimum recall and a maximum detection delay, and per run a
maximum of false-alarm episodes per meter-day; on two tuning seeds and on one held-out seed
that was run once, after the defaults were fixed. The pass marks are the worst of six tuning
seeds with a margin (``docs/tuning.md`` has every measured value): floors and ceilings that
catch a regression, not targets.

Definitions
-----------
* Labels starting in the first day, or while the model still reports ``warming_up``, are not
  scored.
* **Detected**: a flagged window within ``Rule.within`` windows of the window holding the
  label's start. An EV session is a step change, so it must be flagged promptly (10 windows):
  a flag hours later is a coincidence. A stuck appliance counts anywhere in its span (the
  brief's "within it or within N windows after its start"): the forest rarely sees its
  onset, and a later flag while it is still stuck is still worth an operator's look.
* **Delay**: windows from the label's start window to the first flagged one.
* **False alarm**: a run of consecutive flagged windows, none of them within a label or the
  ``TAIL_WINDOWS`` windows after its end (switching a load off is a change too). Counted per
  meter-day of scored time.

Standby creep is not claimed: the forest's time-decayed sample absorbs a ramp over days, so it
needs a daily-baseline check, which this model does not do (``docs/tuning.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from connector.simulator import AnomalyConfig, AnomalyKind, AnomalyLabel, HouseholdSimulator
from streams.core.features import FeatureSpec, compute_features, vector
from streams.core.model import MeterModel, ModelConfig
from streams.core.scaling import OnlineScaler
from streams.core.types import ClosedWindow, ReadingPoint, WindowConfig
from streams.core.windowing import MeterWindows

START_US = 1_767_222_000_000_000  # 2026-01-01 00:00 Europe/Oslo: winter load
DAY_US = 86_400_000_000
WINDOW_US = 60_000_000
METERS = 6
DAYS = 5
INTERVAL_S = 5.0
KINDS: tuple[AnomalyKind, ...] = ("ev_unusual_hour", "stuck_appliance")
ANOMALY_RATE = 0.5  # starts per meter-day and kind: enough labels per run, still rare
TUNING_SEEDS = (11, 12)  # the defaults were tuned on seeds 11-16
HELD_OUT_SEED = 4242
TAIL_WINDOWS = 10
SPEC = FeatureSpec(tz="Europe/Oslo")


@dataclass(frozen=True)
class Rule:
    within: int | None  # windows from the start that count; None: the whole label span
    min_recall: float
    max_delay: int


RULES = {
    # seeds 11-16: recall 0.64-0.90 per seed (50/65 pooled), every detection within 1 window
    "ev_unusual_hour": Rule(within=10, min_recall=0.5, max_delay=3),
    # recall 0.15-0.67 (28/75 pooled); delays up to 463 windows, mostly late hits: 480 is the
    # longest label (8 h), so this only says "flagged while still stuck"
    "stuck_appliance": Rule(within=None, min_recall=0.1, max_delay=480),
}
MAX_FALSE_ALARMS_PER_METER_DAY = 1.5  # measured 0.34-1.28 per seed, 0.78 mean


def default_config(**overrides: Any) -> ModelConfig:
    """The default model for the default feature spec (what the worker runs)."""
    return ModelConfig(
        feature_names=SPEC.names, features_fingerprint=SPEC.fingerprint(), **overrides
    )


def new_scaler() -> OnlineScaler:
    return OnlineScaler(len(SPEC.names), std_floor=SPEC.std_floors())


@dataclass
class MeterRun:
    """One meter's closed windows in order, and what the model said about each."""

    starts: list[int] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    scored: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def simulate(
    seed: int, config: ModelConfig | None = None, *, meters: int = METERS, days: int = DAYS
) -> tuple[dict[str, MeterRun], list[AnomalyLabel]]:
    """Run the simulator through windowing, features and one model per meter."""
    config = config or default_config()
    sim = HouseholdSimulator(
        meters,
        start_us=START_US,
        interval_s=INTERVAL_S,
        seed=seed,
        anomalies=AnomalyConfig.only(*KINDS, rate=ANOMALY_RATE),
    )
    end_us = START_US + days * DAY_US
    windows = {m: MeterWindows(WindowConfig()) for m in sim.meter_ids}
    models = {m: MeterModel(config, new_scaler) for m in sim.meter_ids}
    runs = {m: MeterRun() for m in sim.meter_ids}

    def feed(meter: str, closed: Sequence[ClosedWindow]) -> None:
        for window in closed:
            features = vector(compute_features(window, SPEC), SPEC)
            result = models[meter].process(features, SPEC.names)
            run = runs[meter]
            run.starts.append(window.start_us)
            run.flagged.append(result.is_anomaly)
            run.scored.append(not result.warming_up and window.start_us >= START_US + DAY_US)
            run.scores.append(result.score)

    for batch in sim.batches(end_us=end_us):
        for r in batch:
            point = ReadingPoint(
                ts_us=r["ts"],
                power_w=r["power_w"],
                append_ms=r["ts"] // 1000,
                voltage_v=(r["voltage_l1_v"], r["voltage_l2_v"], r["voltage_l3_v"]),
                current_a=(r["current_l1_a"], r["current_l2_a"], r["current_l3_a"]),
            )
            feed(r["meter_id"], windows[r["meter_id"]].add(point).closed)
    for meter, w in windows.items():
        feed(meter, w.flush_all())
    return runs, sim.labels_until(end_us)


@dataclass(frozen=True)
class KindScore:
    labels: int
    delays: tuple[int | None, ...]  # None: missed

    @property
    def detected(self) -> int:
        return sum(d is not None for d in self.delays)

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else float("nan")

    @property
    def max_delay(self) -> int:
        return max((d for d in self.delays if d is not None), default=0)


def evaluate(
    runs: dict[str, MeterRun], labels: Sequence[AnomalyLabel], rules: dict[str, Rule] = RULES
) -> tuple[dict[str, KindScore], float]:
    """Per-kind delays (None = missed) and false-alarm episodes per scored meter-day."""
    delays: dict[str, list[int | None]] = {kind: [] for kind in rules}
    false_alarms, scored_windows = 0, 0
    for meter, run in runs.items():
        index = {start: i for i, start in enumerate(run.starts)}
        related = [False] * len(run.starts)
        for label in (lb for lb in labels if lb.meter_id == meter):
            first = label.start_us - label.start_us % WINDOW_US
            tail_end = label.end_us + TAIL_WINDOWS * WINDOW_US
            for i, start in enumerate(run.starts):
                related[i] = related[i] or first <= start < tail_end
            if first not in index or not run.scored[index[first]]:
                continue
            i0 = index[first]
            rule = rules[label.kind]
            stop = label.end_us if rule.within is None else first + rule.within * WINDOW_US
            hits = (
                i - i0
                for i in range(i0, len(run.starts))
                if run.starts[i] < stop and run.flagged[i]
            )
            delays[label.kind].append(next(hits, None))
        in_alarm = False
        for i, flagged in enumerate(run.flagged):
            if not run.scored[i]:
                continue
            scored_windows += 1
            alarm = flagged and not related[i]
            false_alarms += alarm and not in_alarm
            in_alarm = alarm
    scores = {kind: KindScore(len(d), tuple(d)) for kind, d in delays.items()}
    return scores, false_alarms / (scored_windows * WINDOW_US / DAY_US)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [*TUNING_SEEDS, HELD_OUT_SEED])
def test_detection_quality(seed: int) -> None:
    runs, labels = simulate(seed)
    scores, false_alarms = evaluate(runs, labels)
    report = {kind: (s.detected, s.labels, s.delays) for kind, s in scores.items()}
    for kind, rule in RULES.items():
        score = scores[kind]
        assert score.labels >= 5, f"seed {seed}: too few {kind} labels to judge: {report}"
        assert score.recall >= rule.min_recall, f"seed {seed} {kind}: {report}"
        assert score.max_delay <= rule.max_delay, f"seed {seed} {kind}: {report}"
    assert false_alarms <= MAX_FALSE_ALARMS_PER_METER_DAY, (
        f"seed {seed}: {false_alarms:.2f} false alarms per meter-day; {report}"
    )


def test_evaluate_counts_hits_misses_and_false_alarms() -> None:
    """The scoring rules themselves, on a hand-made run of 20 one-minute windows."""
    run = MeterRun(
        starts=[START_US + i * WINDOW_US for i in range(20)],
        flagged=[i in (3, 4, 12, 17) for i in range(20)],
        scored=[True] * 20,
        scores=[0.0] * 20,
    )

    def label(kind: AnomalyKind, first: int, last: int) -> AnomalyLabel:
        return AnomalyLabel(
            "m", START_US + first * WINDOW_US + 5, START_US + last * WINDOW_US, kind
        )

    labels = [label("ev_unusual_hour", 2, 3), label("stuck_appliance", 8, 9)]
    rules = {"ev_unusual_hour": Rule(2, 0, 0), "stuck_appliance": Rule(None, 0, 0)}
    scores, false_alarms = evaluate({"m": run}, labels, rules)
    assert scores["ev_unusual_hour"].delays == (1,)  # window 3, one after the start window 2
    assert scores["stuck_appliance"].delays == (None,)  # window 12 is after its span
    # 3-4 lie in the EV label's tail; 12 is inside the stuck label's tail (ends at 9 + 10);
    # 17 too; so no false alarm. Without labels: three episodes (3-4, 12, 17) in 20 minutes.
    assert false_alarms == 0.0
    _, unlabelled = evaluate({"m": run}, [], rules)
    assert unlabelled == pytest.approx(3 / (20 * WINDOW_US / DAY_US))
