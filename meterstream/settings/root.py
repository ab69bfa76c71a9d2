"""One typed settings layer for every meterstream process.

Every knob is an environment variable prefixed ``METERSTREAM_``; the first word after the
prefix names the group (``METERSTREAM_KAFKA_BOOTSTRAP_SERVERS`` is ``settings.kafka.bootstrap_servers``).
Defaults are the addresses of the compose stack, so a container started there needs no
configuration at all.

Precedence, highest first:

1. the process environment;
2. ``.env`` in the working directory (``METERSTREAM_ENV_FILE`` names another file, empty disables it);
3. ``.meterstream/dev.env``, written by ``meterstream dev services up``
   (``METERSTREAM_DEV_ENV_FILE`` names another file, empty disables it; the test suite disables it
   so tests can never write into a developer's running stack);
4. the defaults below.

Secrets (passwords, keys, tokens) are :class:`pydantic.SecretStr`: they print as ``**********``
everywhere, and each can also come from a file named by the same variable with ``_FILE`` appended
(``METERSTREAM_POSTGRES_PASSWORD_FILE=/run/secrets/pg``), which is how Docker and Kubernetes
secrets arrive. A file is read when the value is needed, so a rotated secret is picked up on the
next reconnect.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from meterstream.errors import ConfigError
from meterstream.settings.base import ENV_PREFIX, Duration, Group
from meterstream.settings.connector import (
    ConnectorSettings,
    MetricsSettings,
    ReplaySettings,
    SimSettings,
    TibberSettings,
)
from meterstream.settings.services import (
    KafkaSettings,
    PostgresSettings,
    S3Settings,
    SchemaRegistrySettings,
)
from meterstream.settings.sinks import DbSettings, LakeSettings, ScoresSinkSettings
from meterstream.settings.worker import WorkerSettings

DEFAULT_DEV_ENV_FILE = ".meterstream/dev.env"
DEFAULT_ENV_FILE = ".env"


class LogSettings(Group):
    """Logging of every process."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field(
        "text", description="text for terminals, json for log shippers."
    )


class Settings(BaseSettings):
    """Every meterstream setting. Build it once with :func:`load_settings`; pass slices down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
        case_sensitive=False,
    )

    source: Literal["tibber", "simulate", "replay"] = Field(
        "simulate", description="What the connector reads: Tibber, the simulator or a file replay."
    )
    max_clock_skew: Duration = Field(
        300.0,
        gt=0,
        description="A reading whose ts is further ahead of its arrival is not published.",
    )
    fault: str = Field(
        "",
        description="Test hook: a named fault point where the process kills itself (tests only).",
    )
    kafka: KafkaSettings = KafkaSettings()
    schema_registry: SchemaRegistrySettings = SchemaRegistrySettings()
    postgres: PostgresSettings = PostgresSettings()
    s3: S3Settings = S3Settings()
    tibber: TibberSettings = TibberSettings()
    sim: SimSettings = SimSettings()
    replay: ReplaySettings = ReplaySettings()
    connector: ConnectorSettings = ConnectorSettings()
    metrics: MetricsSettings = MetricsSettings()
    worker: WorkerSettings = WorkerSettings()
    db: DbSettings = DbSettings()
    scores: ScoresSinkSettings = ScoresSinkSettings()
    lake: LakeSettings = LakeSettings()
    log: LogSettings = LogSettings()

    def secrets(self) -> list[str]:
        """Every secret value currently configured, for the log redaction filter."""
        found: list[str] = []
        for _, value in _walk(self):
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        for resolver in (
            self.postgres.resolved_password,
            self.kafka.resolved_sasl_password,
            self.s3.resolved_secret_key,
            self.tibber.resolved_token,
            self.db.resolved_admin_password,
            self.db.resolved_reader_password,
        ):
            try:
                secret = resolver()
            except ConfigError:
                continue
            if secret is not None and secret.get_secret_value():
                found.append(secret.get_secret_value())
        return sorted(set(found))

    def masked(self) -> dict[str, str]:
        """Flat ``METERSTREAM_*`` name to printable value, secrets masked."""
        return {name: _printable(value) for name, value in _walk(self)}


def _walk(model: BaseModel, prefix: str = ENV_PREFIX) -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        env_name = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            yield from _walk(value, f"{env_name}_")
        else:
            yield env_name, value


def _printable(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if value is None:
        return ""
    return str(value)


def _env_file(variable: str, default: str, environ: Mapping[str, str]) -> Path | None:
    value = environ.get(variable, default)
    return Path(value) if value else None


def env_files(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The dotenv files to read, lowest precedence first (pydantic-settings lets later files win)."""
    environ = os.environ if environ is None else environ
    files = (
        _env_file(f"{ENV_PREFIX}DEV_ENV_FILE", DEFAULT_DEV_ENV_FILE, environ),
        _env_file(f"{ENV_PREFIX}ENV_FILE", DEFAULT_ENV_FILE, environ),
    )
    return tuple(path for path in files if path is not None and path.is_file())


def load_settings(env_file_paths: tuple[Path, ...] | None = None, **overrides: Any) -> Settings:
    """Build the settings from the environment and the dotenv files.

    Raises :class:`ConfigError` naming each offending ``METERSTREAM_*`` variable.
    """
    files = env_files() if env_file_paths is None else env_file_paths
    try:
        return Settings(_env_file=files or None, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the environment variable and never echoing secret input."""
    lines = ["invalid settings:"]
    for error in exc.errors(include_input=False, include_url=False):
        location = [str(part) for part in error["loc"]]
        variable = ENV_PREFIX + "_".join(location).upper()
        lines.append(f"  {variable}: {error['msg']}")
    return "\n".join(lines)
