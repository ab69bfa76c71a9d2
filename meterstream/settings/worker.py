"""Settings of the Faust worker."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from meterstream.settings.base import Group


class WorkerSettings(Group):
    """The Faust worker that windows readings and scores them."""

    app_id: str = Field(
        "meterstream-worker",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id: names the consumer group and the changelog topics, so two "
        "workers with different app ids score the same input independently.",
    )
    data_dir: Path = Field(
        Path("/var/lib/meterstream/worker"),
        description="Where the worker keeps its RocksDB tables.",
    )
