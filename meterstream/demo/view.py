"""The live terminal view: recent windows per meter, counters, and the processes' states.

On a terminal the whole screen is redrawn about once a second with plain ANSI sequences (cursor
home, clear to end of line/screen; no curses, no dependencies). Anywhere else (a pipe, a CI
log) a compact status line is printed every few seconds instead, so logs stay readable.
The functions that lay out the text are pure, so they can be checked without a terminal.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TextIO

from meterstream.demo.observe import Snapshot, WindowRow
from meterstream.demo.plan import (
    DEMO_WARMUP,
    PRODUCTION_THRESHOLD_WARMUP,
    PRODUCTION_WARMUP,
    WINDOW_S,
    DemoPlan,
)

FLAG = "★ ANOMALY"
LINE_EVERY_S = 5.0
MAX_ROWS_PER_METER = 8
FLAGGED_SHOWN = 3

_HOME = "\x1b[H"
_CLEAR_LINE = "\x1b[K"
_CLEAR_BELOW = "\x1b[J"
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_RED = "1;31"
_YELLOW = "33"
_DIM = "2"
_BOLD = "1"


def duration_text(seconds: float) -> str:
    """``1h30m``, ``6h``, ``45s``: short, for headers.

    >>> duration_text(5400), duration_text(21600), duration_text(45), duration_text(90)
    ('1h30m', '6h', '45s', '1m30s')
    """
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if secs and not hours:
        parts.append(f"{secs}s")
    return "".join(parts) or "0s"


def speed_text(plan: DemoPlan) -> str:
    factor = plan.speed_factor
    if factor is None:
        return "max speed"
    return f"{factor:g}× ({duration_text(factor)} per second)"


def _local(moment: datetime, fmt: str = "%H:%M") -> str:
    # Local time: the simulated span ends "now", so the user's own clock is the natural scale.
    return moment.astimezone().strftime(fmt)


def tuning_text(plan: DemoPlan) -> str:
    """Why flags appear only after a while, with the demo's (not production's) numbers."""
    windows = plan.flags_after_windows
    simulated = windows * WINDOW_S
    factor = plan.speed_factor
    wall = "" if factor is None else f", ~{duration_text(simulated / factor)} here"
    production = PRODUCTION_WARMUP + 1 + PRODUCTION_THRESHOLD_WARMUP
    return (
        f"demo warm-up: scores after {DEMO_WARMUP} windows, flags after {windows} "
        f"(production: {production:,}) = {duration_text(simulated)} simulated{wall}"
    )


def counters_text(snapshot: Snapshot) -> str:
    published = "…" if snapshot.readings_published is None else f"{snapshot.readings_published:,}"
    lake = "…" if snapshot.lake_files is None else f"{snapshot.lake_files:,}"
    if snapshot.lake_rows:
        lake += f" ({snapshot.lake_rows:,} readings)"
    return (
        f"readings published {published} · windows scored {snapshot.windows:,} · "
        f"anomalies flagged {snapshot.anomalies:,} (injected {len(snapshot.labels)}) · "
        f"lake files {lake}"
    )


def progress_text(plan: DemoPlan, snapshot: Snapshot) -> str:
    """How far the slowest home has been scored, against the end of the simulated span."""
    if snapshot.scored_until is None:
        return "nothing scored yet"
    return f"scored up to {_local(snapshot.scored_until)} of {_local(plan.sim_end)}"


def children_text(snapshot: Snapshot) -> str:
    return " · ".join(f"{name} {state}" for name, state in snapshot.children)


def status_line(plan: DemoPlan, snapshot: Snapshot) -> str:
    """The compact line printed when stdout is not a terminal."""
    elapsed = duration_text(snapshot.elapsed_s)
    state = "done" if snapshot.done else children_text(snapshot)
    note = f" · {snapshot.note}" if snapshot.note else ""
    return (
        f"[demo {elapsed}] {counters_text(snapshot)} · {progress_text(plan, snapshot)} · "
        f"{state}{note}"
    )


def rows_per_meter(homes: int, height: int) -> int:
    """Recent windows per meter that fit: 0 means one summary line per meter instead.

    >>> rows_per_meter(3, 40), rows_per_meter(3, 30), rows_per_meter(3, 24), rows_per_meter(40, 40)
    (6, 2, 0, 0)
    """
    fixed = 7 + FLAGGED_SHOWN + 3  # header, recent anomalies, footer
    per_meter = (height - fixed) // max(1, homes) - 3  # name, column header, blank line
    # A block of one window costs three lines for one row: the summary table is better then.
    return 0 if per_meter < 2 else min(MAX_ROWS_PER_METER, per_meter)


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text


_COLUMNS = (
    f"  {'window':<6} {'power W':>8} {'score':>6} {'threshold':>9}  "
    f"{'flag':<9}  {'top feature':<18} label"
)


_METER_COLUMNS = f"  {'meter':<10} {_COLUMNS.strip()}"


def _score_cells(row: WindowRow) -> tuple[str, str]:
    if row.score == 0.0 and row.threshold is None:
        return f"{'—':>6}", f"{'warm-up':>9}"  # the model is still learning this meter
    threshold = f"{'learning':>9}" if row.threshold is None else f"{row.threshold:9.2f}"
    return f"{row.score:6.2f}", threshold


def window_line(row: WindowRow, style: _Style, *, with_meter: bool = False) -> str:
    score, threshold = _score_cells(row)
    power = f"{'—':>8}" if row.power_w is None else f"{row.power_w:8.0f}"
    flag = FLAG if row.is_anomaly else ""
    head = f"  {row.meter_id:<10} " if with_meter else "  "
    text = (
        f"{head}{_local(row.window_start):<6} {power} {score} {threshold}  {flag:<9}  "
        f"{(row.top_feature or ''):<18} "
    )
    label = style(row.label or "", _YELLOW)
    if row.is_anomaly:
        return style(text, _RED) + label
    if row.threshold is None:
        return style(text, _DIM) + label
    return text + label


def frame_lines(
    plan: DemoPlan, snapshot: Snapshot, height: int, *, color: bool = False
) -> list[str]:
    """The full-screen view, one string per line."""
    style = _Style(color)
    span = (
        f"{_local(plan.sim_start, '%m-%d %H:%M')} → {_local(plan.sim_end, '%H:%M')}"
        f" ({duration_text(plan.options.duration_s)})"
    )
    lines = [
        style(f"meterstream demo {plan.run_id}", _BOLD)
        + f" · {plan.options.homes} homes · {span} · {speed_text(plan)}"
        + f" · up {duration_text(snapshot.elapsed_s)}",
        style(tuning_text(plan), _DIM),
        counters_text(snapshot),
        f"{progress_text(plan, snapshot)} · {children_text(snapshot)}",
    ]
    if snapshot.note:
        lines.append(style(snapshot.note, _YELLOW))
    lines.append("")
    per_meter = rows_per_meter(plan.options.homes, height)
    if per_meter:
        for meter_id in sorted(snapshot.recent):
            rows = snapshot.recent[meter_id][:per_meter]
            current = rows[0].label if rows else None
            suffix = style(f"  labelled anomaly now: {current}", _YELLOW) if current else ""
            lines += [style(meter_id, _BOLD) + suffix, style(_COLUMNS, _DIM)]
            lines += [window_line(row, style) for row in rows]
            lines.append("")
    else:
        lines.append(style(_METER_COLUMNS, _DIM))
        for meter_id in sorted(snapshot.recent):
            lines.append(window_line(snapshot.recent[meter_id][0], style, with_meter=True))
        lines.append("")
    if snapshot.flagged:
        lines += [style("recent anomalies", _BOLD), style(_METER_COLUMNS, _DIM)]
        lines += [window_line(r, style, with_meter=True) for r in snapshot.flagged[:FLAGGED_SHOWN]]
        lines.append("")
    if snapshot.done:
        finished = "all readings scored and written"
        if not snapshot.complete:
            finished += " (some homes' last windows never came)"
        lines.append(style(f"{finished}; Ctrl-C stops the demo and shows where the data is", _BOLD))
    else:
        lines.append("Ctrl-C stops everything and shows where the data is.")
    return lines


class TerminalView:
    """Draws snapshots: full screen on a terminal, a line every few seconds elsewhere."""

    def __init__(self, plan: DemoPlan, out: TextIO = sys.stdout) -> None:
        self._plan = plan
        self._out = out
        self.is_tty = out.isatty()
        self._next_line = 0.0
        self._drawn = False
        self._closed_pipe = False
        self._done_shown = False

    def draw(self, snapshot: Snapshot) -> None:
        if self._closed_pipe:
            return
        try:
            if self.is_tty:
                self._draw_screen(snapshot)
            elif time.monotonic() >= self._next_line or snapshot.done != self._done_shown:
                # Every few seconds while it runs; once done, one line says so and nothing
                # changes any more until Ctrl-C.
                self._next_line = float("inf") if snapshot.done else time.monotonic() + LINE_EVERY_S
                self._done_shown = snapshot.done
                self._out.write(status_line(self._plan, snapshot) + "\n")
                self._out.flush()
        except BrokenPipeError:
            self._closed_pipe = True  # nobody reads any more; the demo runs on until stopped

    def _draw_screen(self, snapshot: Snapshot) -> None:
        import shutil

        size = shutil.get_terminal_size()
        lines = frame_lines(self._plan, snapshot, size.lines, color=True)[: size.lines - 1]
        prefix = _HIDE_CURSOR if not self._drawn else ""
        if not self._drawn:
            prefix += "\x1b[2J"  # the first frame starts on a clean screen
        self._drawn = True
        body = "".join(f"{_clip(line, size.columns)}{_CLEAR_LINE}\n" for line in lines)
        self._out.write(prefix + _HOME + body + _CLEAR_BELOW)
        self._out.flush()

    def close(self) -> None:
        """Give the cursor back; what is printed next goes below the last frame."""
        if self.is_tty and self._drawn and not self._closed_pipe:
            self._out.write(_SHOW_CURSOR + "\n")
            self._out.flush()


def _clip(line: str, width: int) -> str:
    """Cut a line to ``width`` visible characters, keeping ANSI sequences intact."""
    visible = 0
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "\x1b":
            end = line.find("m", i)
            if end == -1:
                break
            out.append(line[i : end + 1])
            i = end + 1
            continue
        if visible >= width:
            i += 1
            continue
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out)
