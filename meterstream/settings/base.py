"""Building blocks of the settings groups: the immutable group base, secret files, durations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

from meterstream.errors import ConfigError

ENV_PREFIX = "METERSTREAM_"


class Group(BaseModel):
    """Base of every settings group: immutable, and unknown keys are an error (typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def read_secret_file(path: Path, variable: str) -> SecretStr:
    try:
        # Secrets mounted from files usually end with a newline that is not part of the secret.
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ConfigError(
            f"{variable} points at {path}, which cannot be read: {exc.strerror}"
        ) from exc


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$"
)


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` or ``"250ms"``.

    >>> parse_duration("1h30m"), parse_duration("250ms"), parse_duration(60)
    (5400.0, 0.25, 60.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like 90s, 5m, 1h30m, 2d")
    text = value.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(
            f"{value!r} is not a duration; use seconds or text like 90s, 5m, 1h30m, 2d"
        )
    days, hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, given as a number or as text like ``90s``, ``5m``, ``1h30m``, ``2d``."""
