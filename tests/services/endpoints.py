"""What a test gets from a service provider: addresses and credentials, never process handles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Provider = Literal["env", "docker", "local"]


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap_servers: str
    schema_registry_url: str | None
    provider: Provider


@dataclass(frozen=True)
class PostgresEndpoint:
    dsn: str
    password: str
    provider: Provider
    timescaledb: bool = False


@dataclass(frozen=True)
class S3Endpoint:
    endpoint: str
    access_key: str
    secret_key: str
    provider: Provider

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[1]
