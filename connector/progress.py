"""Progress lines for long connector runs (replay, bounded simulation) and a final summary."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws one line on a terminal (at most twice a second); logs a line every 10 s otherwise."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, n: int = 1, note: str = "") -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last_draw >= (0.5 if self._tty else 10.0):
            self._last_draw = now
            self._draw(now, note)

    def _draw(self, now: float, note: str) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.count / elapsed
        done = f"{self.count:,}" + (
            f"/{self.total:,} ({100 * self.count / self.total:.0f}%)" if self.total else ""
        )
        line = f"{self.label}: {done} readings, {rate:,.0f}/s, {elapsed:,.0f} s {note}".rstrip()
        if self._tty:
            self._stream.write("\r\033[K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> float:
        """Ends the progress line; returns the elapsed seconds."""
        elapsed = time.monotonic() - self._started
        if self._tty and self._last_draw:
            self._stream.write("\n")
            self._stream.flush()
        return elapsed
