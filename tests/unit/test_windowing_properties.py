"""Properties of MeterWindows: arrival order within the lateness, duplicates, snapshots, replays."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import accumulate

from hypothesis import given
from hypothesis import strategies as st

from streams.core.types import ClosedWindow, ReadingPoint, WindowConfig
from streams.core.windowing import MeterWindows, Outcome

S = 1_000_000
BASE = 1_767_222_000_000_000

configs = st.builds(
    WindowConfig,
    size_us=st.sampled_from([5 * S, 60 * S, 300 * S]),
    lateness_us=st.sampled_from([0, S, 10 * S, 90 * S]),
    idle_timeout_us=st.sampled_from([0, 5 * S, 30 * S]),
)
phase = st.one_of(st.none(), st.floats(-300.0, 300.0, allow_nan=False))
phases = st.tuples(phase, phase, phase)


@dataclass(frozen=True)
class Tick:
    append_ms: int
    offset: int


Event = ReadingPoint | Tick


@st.composite
def sorted_streams(draw: st.DrawFn, max_n: int = 100) -> list[ReadingPoint]:
    """Readings in ts order with unique timestamps, appended at their event time."""
    n = draw(st.integers(1, max_n))
    gaps = draw(st.lists(st.integers(1, 25 * S), min_size=n, max_size=n))
    start = BASE + draw(st.integers(0, 600 * S))
    powers = draw(st.lists(st.floats(-5e3, 2e4, allow_nan=False), min_size=n, max_size=n))
    volts = draw(st.lists(phases, min_size=n, max_size=n))
    amps = draw(st.lists(phases, min_size=n, max_size=n))
    return [
        ReadingPoint(ts, p, ts // 1000, i, v, a)
        for i, (ts, p, v, a) in enumerate(
            zip(accumulate(gaps, initial=start), powers, volts, amps, strict=False)
        )
    ]


def contents(c: ClosedWindow) -> tuple[object, ...]:
    """Everything but who closed the window (that depends on arrival order by design)."""
    return (
        c.start_us,
        c.end_us,
        c.ts_us,
        c.power_w,
        c.voltage_sum_v,
        c.voltage_count,
        c.current_max_a,
    )


def run_readings(
    cfg: WindowConfig, points: list[ReadingPoint]
) -> tuple[list[Outcome], list[tuple[object, ...]]]:
    w = MeterWindows(cfg)
    outcomes: list[Outcome] = []
    closed: list[ClosedWindow] = []
    for p in points:
        r = w.add(p)
        outcomes.append(r.outcome)
        closed += r.closed
    return outcomes, [contents(c) for c in closed + w.flush_all()]


def reference(cfg: WindowConfig, points: list[ReadingPoint]) -> list[tuple[object, ...]]:
    """Windows computed directly from the spec: group by aligned start, sort, aggregate."""
    groups: dict[int, list[ReadingPoint]] = defaultdict(list)
    for p in points:
        groups[p.ts_us - p.ts_us % cfg.size_us].append(p)
    out: list[tuple[object, ...]] = []
    for start, ps in sorted(groups.items()):
        ps.sort(key=lambda p: p.ts_us)
        vs = [[v for p in ps if (v := p.voltage_v[i]) is not None] for i in range(3)]
        cs = [[a for p in ps if (a := p.current_a[i]) is not None] for i in range(3)]
        out.append(
            (
                start,
                start + cfg.size_us,
                tuple(p.ts_us for p in ps),
                tuple(p.power_w for p in ps),
                tuple(sum(round(v * 1000) for v in vv) / 1000 for vv in vs),
                tuple(len(vv) for vv in vs),
                tuple(max(cc) if cc else None for cc in cs),
            )
        )
    return out


@given(cfg=configs, stream=sorted_streams(), data=st.data())
def test_any_order_within_lateness_gives_the_same_windows(
    cfg: WindowConfig, stream: list[ReadingPoint], data: st.DataObject
) -> None:
    # Reading i arrives at ts_i + d_i with 0 <= d_i <= lateness: every reading before it has
    # ts <= its own ts + lateness, so it is never more than the lateness behind the watermark.
    delays = data.draw(
        st.lists(st.integers(0, cfg.lateness_us), min_size=len(stream), max_size=len(stream))
    )
    shuffled = [
        stream[i] for i in sorted(range(len(stream)), key=lambda i: stream[i].ts_us + delays[i])
    ]
    in_order, expected = run_readings(cfg, stream)
    outcomes, got = run_readings(cfg, shuffled)
    assert set(in_order) == set(outcomes) == {"accepted"}
    assert got == expected == reference(cfg, stream)


@given(cfg=configs, stream=sorted_streams(), data=st.data())
def test_duplicates_anywhere_after_the_original_change_nothing(
    cfg: WindowConfig, stream: list[ReadingPoint], data: st.DataObject
) -> None:
    copies = data.draw(
        st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(0, 10**6)), max_size=30)
    )
    events = list(stream)
    for index, where in copies:  # re-delivery: the copy comes after the original, later appended
        original = events.index(stream[index])
        position = original + 1 + where % (len(events) - original)
        events.insert(position, stream[index])
    outcomes, got = run_readings(cfg, events)
    assert got == run_readings(cfg, stream)[1]
    assert outcomes.count("accepted") == len(stream)


@st.composite
def logs(draw: st.DrawFn) -> tuple[WindowConfig, list[Event]]:
    """A partition's log as one meter's state sees it: readings (late, duplicated, with
    silences) and ticks, in append order, append times from one broker clock."""
    cfg = draw(configs)
    n = draw(st.integers(1, 60))
    gaps = draw(
        st.lists(st.one_of(st.integers(1, 5 * S), st.integers(1, 150 * S)), min_size=n, max_size=n)
    )
    delays = draw(st.lists(st.integers(0, 45_000), min_size=n, max_size=n))  # arrival delay, ms
    dup = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    stamped: list[tuple[int, int, ReadingPoint]] = []
    for i, (ts, delay) in enumerate(zip(accumulate(gaps, initial=BASE), delays, strict=False)):
        point = ReadingPoint(
            ts, float(i % 7), 0, 0, (230.0 + i % 3, None, None), (None, 1.0 * i, None)
        )
        stamped.append((ts // 1000 + delay, i, point))
        if dup[i]:
            stamped.append((ts // 1000 + delay + 700, i, point))
    tick_every = draw(st.sampled_from([1_000, 5_000, 20_000]))
    first, last = min(s[0] for s in stamped), max(s[0] for s in stamped) + 200_000
    marks: list[tuple[int, int, ReadingPoint | None]] = [
        (t, -1, None) for t in range(first, last, tick_every)
    ]
    events: list[Event] = []
    for offset, (append, _, item) in enumerate(sorted([*stamped, *marks], key=lambda e: e[:2])):
        if item is None:
            events.append(Tick(append, offset))
        else:
            events.append(
                ReadingPoint(
                    item.ts_us, item.power_w, append, offset, item.voltage_v, item.current_a
                )
            )
    return cfg, events


def feed(w: MeterWindows, event: Event) -> list[ClosedWindow]:
    if isinstance(event, Tick):
        return w.on_tick(event.append_ms, event.offset)
    return w.add(event).closed


@given(log=logs())
def test_replay_and_snapshots_at_every_event_give_identical_windows(
    log: tuple[WindowConfig, list[Event]],
) -> None:
    cfg, events = log
    straight, again, restored = MeterWindows(cfg), MeterWindows(cfg), MeterWindows(cfg)
    out_straight, out_again, out_restored = [], [], []
    for event in events:
        out_straight += feed(straight, event)
        out_again += feed(again, event)
        data = restored.to_bytes()
        restored = MeterWindows.from_bytes(data, cfg)
        assert restored.to_bytes() == data
        out_restored += feed(restored, event)
        assert restored == straight
    assert out_straight == out_again == out_restored  # full equality, closing offsets included
    assert straight.flush_all() == restored.flush_all()
    closed_starts = [c.start_us for c in out_straight]
    assert closed_starts == sorted(set(closed_starts))  # each window closes once, in order


@given(log=logs(), data=st.data())
def test_idle_close_due_is_exact(
    log: tuple[WindowConfig, list[Event]], data: st.DataObject
) -> None:
    cfg, events = log
    cut = data.draw(st.integers(0, len(events)))
    w = MeterWindows(cfg)
    for event in events[:cut]:
        feed(w, event)
    due = w.idle_close_due_ms
    if due is None:
        assert w.open_window_starts == ()
        return
    before = w.to_bytes()
    assert w.on_tick(due - 1, 1) == []
    assert w.to_bytes() == before
    assert w.on_tick(due, 2) != []
