"""The worker's per-meter state: two stored values, and a history that may run ahead."""

from __future__ import annotations

import msgpack

from streams.state import MeterState, OutboxEntry


def _state() -> MeterState:
    state = MeterState(windows=b"open", windows_total=3, snapshot_seq=1, model_fingerprint="f")
    for start in (60, 120, 180):
        state.add_window(start, [1.0, float(start)], OutboxEntry(start, start * 10, b"score"))
    return state


def test_hot_value_and_history_round_trip() -> None:
    state = _state()
    again = MeterState.from_parts(state.hot_bytes(), state.history_bytes())
    assert again == state
    assert len(state.hot_bytes()) < 64  # the part written at every flush stays small


def test_a_state_without_history_has_no_vectors_or_outbox() -> None:
    again = MeterState.from_parts(_state().hot_bytes(), None)
    assert (again.vectors, again.outbox, again.windows_total) == ([], [], 3)


def test_closing_a_window_again_replaces_its_entries() -> None:
    state = _state()
    state.add_window(120, [9.0, 9.0], OutboxEntry(120, 999, b"again"))
    assert [s for s, _ in state.vectors] == [60, 120]
    assert [(e.window_start_us, e.payload) for e in state.outbox] == [
        (60, b"score"),
        (120, b"again"),
    ]


def test_the_single_value_format_of_older_releases_is_still_read() -> None:
    old = msgpack.packb(
        [1, b"w", 2, 0, [[60, [1.0]], [120, [2.0]]], [[120, 7, b"p"]], "fp"], use_bin_type=True
    )
    state = MeterState.from_parts(old, None)
    assert state.vectors == [(60, [1.0]), (120, [2.0])]
    assert state.outbox == [OutboxEntry(120, 7, b"p")]
    assert state.model_fingerprint == "fp"
