"""The settings layer: names, precedence, secrets from files, masking, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterstream.errors import ConfigError
from meterstream.settings import env_files, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("METERSTREAM_") and name not in (
            "METERSTREAM_DEV_ENV_FILE",
            "METERSTREAM_ENV_FILE",
        ):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_compose_stack() -> None:
    settings = load_settings(env_file_paths=())
    assert settings.kafka.bootstrap_servers == "redpanda:9092"
    assert settings.postgres.dsn.startswith("postgresql://meterstream@timescaledb:5432/")
    assert settings.s3.endpoint == "http://minio:9000"
    assert settings.schema_registry.url is None


def test_environment_variables_use_the_documented_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERSTREAM_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("METERSTREAM_SCHEMA_REGISTRY_URL", "http://registry:8081")
    monkeypatch.setenv("METERSTREAM_POSTGRES_DSN", "postgresql://writer@db:5432/m")
    monkeypatch.setenv("METERSTREAM_POSTGRES_PASSWORD", "s3cr3t-pw")
    monkeypatch.setenv("METERSTREAM_S3_ENDPOINT", "https://s3.example:9000/")
    monkeypatch.setenv("METERSTREAM_S3_ACCESS_KEY", "ak")
    monkeypatch.setenv("METERSTREAM_S3_SECRET_KEY", "sk-very-secret")
    monkeypatch.setenv("METERSTREAM_WORKER_APP_ID", "model-b")
    settings = load_settings(env_file_paths=())
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.schema_registry.url == "http://registry:8081"
    assert settings.postgres.connect_kwargs() == {
        "conninfo": "postgresql://writer@db:5432/m",
        "password": "s3cr3t-pw",
    }
    assert settings.s3.endpoint == "https://s3.example:9000"
    assert settings.s3.secure
    assert settings.s3.host == "s3.example:9000"
    assert settings.s3.resolved_secret_key().get_secret_value() == "sk-very-secret"
    assert settings.worker.app_id == "model-b"


def test_invalid_values_name_the_variable_and_hide_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERSTREAM_KAFKA_PARTITIONS", "many")
    monkeypatch.setenv("METERSTREAM_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as info:
        load_settings(env_file_paths=())
    message = str(info.value)
    assert "METERSTREAM_KAFKA_PARTITIONS" in message
    assert "METERSTREAM_LOG_LEVEL" in message
    assert "many" not in message  # inputs are not echoed: they might be secrets


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://u:hunter22@db/m", "host=db user=u password=hunter22 dbname=m"],
)
def test_a_dsn_with_a_password_is_refused(monkeypatch: pytest.MonkeyPatch, dsn: str) -> None:
    monkeypatch.setenv("METERSTREAM_POSTGRES_DSN", dsn)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file_paths=())
    assert "METERSTREAM_POSTGRES_PASSWORD" in str(info.value)
    assert "hunter22" not in str(info.value)


def test_secrets_come_from_files_and_are_reread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "pg-password"
    secret.write_text("first-password\n")
    monkeypatch.setenv("METERSTREAM_POSTGRES_PASSWORD_FILE", str(secret))
    settings = load_settings(env_file_paths=())
    assert settings.postgres.resolved_password().get_secret_value() == "first-password"
    secret.write_text("rotated-password")
    assert settings.postgres.resolved_password().get_secret_value() == "rotated-password"


def test_an_unreadable_secret_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("METERSTREAM_S3_SECRET_KEY_FILE", str(tmp_path / "missing"))
    settings = load_settings(env_file_paths=())
    with pytest.raises(ConfigError, match="METERSTREAM_S3_SECRET_KEY_FILE"):
        settings.s3.resolved_secret_key()


def test_masked_view_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERSTREAM_POSTGRES_PASSWORD", "pg-secret-value")
    monkeypatch.setenv("METERSTREAM_S3_SECRET_KEY", "s3-secret-value")
    monkeypatch.setenv("METERSTREAM_KAFKA_SASL_PASSWORD", "sasl-secret-value")
    settings = load_settings(env_file_paths=())
    shown = "\n".join(f"{k}={v}" for k, v in settings.masked().items())
    for secret in ("pg-secret-value", "s3-secret-value", "sasl-secret-value"):
        assert secret not in shown
        assert secret not in repr(settings)
        assert secret in settings.secrets()
    assert "METERSTREAM_POSTGRES_PASSWORD=**********" in shown


def test_precedence_environment_over_dotenv_over_dev_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dev_env = tmp_path / "dev.env"
    dev_env.write_text(
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS=from-dev-env:1\n"
        "METERSTREAM_S3_ENDPOINT=http://from-dev-env:2\n"
        "METERSTREAM_LOG_LEVEL=DEBUG\n"
    )
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS=from-dotenv:1\nMETERSTREAM_S3_ENDPOINT=http://from-dotenv:2\n"
    )
    monkeypatch.setenv("METERSTREAM_DEV_ENV_FILE", str(dev_env))
    monkeypatch.setenv("METERSTREAM_ENV_FILE", str(dotenv))
    monkeypatch.setenv("METERSTREAM_KAFKA_BOOTSTRAP_SERVERS", "from-environment:1")
    files = env_files()
    assert files == (dev_env, dotenv)
    settings = load_settings(env_file_paths=files)
    assert settings.kafka.bootstrap_servers == "from-environment:1"
    assert settings.s3.endpoint == "http://from-dotenv:2"
    assert settings.log.level == "DEBUG"


def test_empty_file_variables_disable_dotenv_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".meterstream").mkdir()
    (tmp_path / ".meterstream" / "dev.env").write_text("METERSTREAM_KAFKA_PARTITIONS=9\n")
    (tmp_path / ".env").write_text("METERSTREAM_KAFKA_PARTITIONS=7\n")
    monkeypatch.setenv("METERSTREAM_DEV_ENV_FILE", "")
    monkeypatch.setenv("METERSTREAM_ENV_FILE", "")
    assert env_files() == ()
    monkeypatch.delenv("METERSTREAM_DEV_ENV_FILE")
    monkeypatch.delenv("METERSTREAM_ENV_FILE")
    assert env_files() == (Path(".meterstream/dev.env"), Path(".env"))
    assert load_settings().kafka.partitions == 7


def test_settings_are_frozen() -> None:
    settings = load_settings(env_file_paths=())
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        settings.kafka.partitions = 3  # type: ignore[misc]
