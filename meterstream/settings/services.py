"""Settings of the services meterstream talks to: Kafka, the schema registry, PostgreSQL, S3."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from meterstream.settings.base import Group, read_secret_file

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class KafkaSettings(Group):
    """Where Kafka (or Redpanda) is and how meterstream's topics are laid out."""

    bootstrap_servers: str = Field(
        "redpanda:9092", description="Comma-separated host:port list of the Kafka/Redpanda brokers."
    )
    partitions: int = Field(
        4,
        ge=1,
        le=1024,
        description="Partition count of every meterstream topic. One setting for all topics: "
        "topics create and every process refuse a live topic that differs.",
    )
    replication_factor: int = Field(
        1, ge=1, le=7, description="Replication factor of the topics meterstream creates."
    )
    topic_prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name (lets several stacks or test runs share a cluster).",
    )
    compression: Compression = Field("zstd", description="Topic and producer compression codec.")
    readings_retention_hours: int = Field(
        24 * 7,
        ge=1,
        description="How long meter.readings.v1 keeps data; the lake keeps it for longer.",
    )
    scores_retention_hours: int = Field(
        24 * 30, ge=1, description="How long meter.anomaly-scores.v1 keeps data."
    )
    dlq_retention_hours: int = Field(
        24 * 30, ge=1, description="How long meter.readings.dlq keeps dead letters."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: str | None = Field(None, description="SASL mechanism, e.g. SCRAM-SHA-512.")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    sasl_password_file: Path | None = Field(None, description="File holding the SASL password.")

    def client_config(self) -> dict[str, str]:
        """librdkafka connection properties (bootstrap and security) shared by every client."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        password = self.resolved_sasl_password()
        if password is not None:
            config["sasl.password"] = password.get_secret_value()
        return config

    def resolved_sasl_password(self) -> SecretStr | None:
        if self.sasl_password_file is not None:
            return read_secret_file(self.sasl_password_file, "METERSTREAM_KAFKA_SASL_PASSWORD_FILE")
        return self.sasl_password


class SchemaRegistrySettings(Group):
    """Optional Confluent-compatible schema registry (Redpanda has one built in)."""

    url: str | None = Field(
        None,
        description="Registry URL. Set: Confluent wire format with registered subjects. "
        "Unset: Avro single-object encoding resolved against the schemas in the package.",
    )


_DSN_PASSWORD = re.compile(r"(?i)(://[^/@:]*:[^/@]+@)|(\bpassword\s*=)")


def check_dsn_has_no_password(value: str, password_variable: str) -> str:
    """Refuse a DSN with a password in it, naming the variable the password belongs in."""
    # A password inside the DSN would be printed by `config`, start-up logs and psycopg's
    # exception messages; keeping it in its own secret field keeps it out of all three.
    if _DSN_PASSWORD.search(value):
        raise ValueError(
            f"must not contain a password; put it in {password_variable} "
            f"or {password_variable}_FILE"
        )
    return value


class PostgresSettings(Group):
    """PostgreSQL/TimescaleDB for scores and live readings."""

    dsn: str = Field(
        "postgresql://meterstream@timescaledb:5432/meterstream",
        description="libpq connection string or URL, without a password.",
    )
    password: SecretStr | None = Field(None, description="Password of the DSN's user (secret).")
    password_file: Path | None = Field(None, description="File holding that password.")

    @field_validator("dsn")
    @classmethod
    def _dsn_has_no_password(cls, value: str) -> str:
        return check_dsn_has_no_password(value, "METERSTREAM_POSTGRES_PASSWORD")

    def resolved_password(self) -> SecretStr | None:
        if self.password_file is not None:
            return read_secret_file(self.password_file, "METERSTREAM_POSTGRES_PASSWORD_FILE")
        return self.password

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for ``psycopg.connect``: the DSN plus the password, kept apart from it."""
        kwargs: dict[str, Any] = {"conninfo": self.dsn}
        password = self.resolved_password()
        if password is not None:
            kwargs["password"] = password.get_secret_value()
        return kwargs


class S3Settings(Group):
    """S3-compatible object store (MinIO in the stack; Garage, SeaweedFS or AWS work too)."""

    endpoint: str = Field("http://minio:9000", description="S3 endpoint URL, http:// or https://.")
    # The access key identifies the account like a user name does; only the secret key is secret.
    access_key: str = Field("meterstream", description="S3 access key id.")
    secret_key: SecretStr = Field(
        SecretStr("meterstream-secret"), description="S3 secret key (secret)."
    )
    secret_key_file: Path | None = Field(None, description="File holding the secret key.")
    region: str = Field("us-east-1", description="S3 region name.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint_has_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def secure(self) -> bool:
        return self.endpoint.startswith("https://")

    @property
    def host(self) -> str:
        """host:port without the scheme, as the minio client wants it."""
        return self.endpoint.split("://", 1)[1]

    def resolved_secret_key(self) -> SecretStr:
        if self.secret_key_file is not None:
            return read_secret_file(self.secret_key_file, "METERSTREAM_S3_SECRET_KEY_FILE")
        return self.secret_key
