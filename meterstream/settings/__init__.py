"""One typed settings layer for every meterstream process (see :mod:`meterstream.settings.root`)."""

from meterstream.settings.base import ENV_PREFIX, Duration, Group, parse_duration
from meterstream.settings.connector import (
    ConnectorSettings,
    MetricsSettings,
    ReplaySettings,
    SimSettings,
    TibberSettings,
)
from meterstream.settings.root import (
    DEFAULT_DEV_ENV_FILE,
    DEFAULT_ENV_FILE,
    LogSettings,
    Settings,
    describe_validation_error,
    env_files,
    load_settings,
)
from meterstream.settings.services import (
    KafkaSettings,
    PostgresSettings,
    S3Settings,
    SchemaRegistrySettings,
)
from meterstream.settings.sinks import DbSettings, LakeSettings, ScoresSinkSettings
from meterstream.settings.worker import WorkerSettings

__all__ = [
    "DEFAULT_DEV_ENV_FILE",
    "DEFAULT_ENV_FILE",
    "ENV_PREFIX",
    "ConnectorSettings",
    "DbSettings",
    "Duration",
    "Group",
    "KafkaSettings",
    "LakeSettings",
    "LogSettings",
    "MetricsSettings",
    "PostgresSettings",
    "ReplaySettings",
    "S3Settings",
    "SchemaRegistrySettings",
    "ScoresSinkSettings",
    "Settings",
    "SimSettings",
    "TibberSettings",
    "WorkerSettings",
    "describe_validation_error",
    "env_files",
    "load_settings",
    "parse_duration",
]
