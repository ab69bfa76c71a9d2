"""The object every command receives: settings built once, lazily, with the command's options.

It lives in its own module so that `python -m meterstream.cli` and the stage packages see the
same class (a class defined in ``__main__`` would be a different one).
"""

from __future__ import annotations

from typing import Any

from meterstream.logs import configure_logging
from meterstream.settings import Settings, load_settings


class CliContext:
    """Lazily built settings, so `--help` works even with a broken environment."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self.overrides: dict[str, Any] = {}

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self.overrides)
            configure_logging(
                self._settings.log.level,
                self._settings.log.format,
                secrets=self._settings.secrets(),
            )
        return self._settings
