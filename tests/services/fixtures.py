"""Pytest fixtures over the service providers.

Session-scoped fixtures start (or find) each service once and yield its endpoint. Function-scoped
ones give every test its own clean slice: unique topic names and app id, a fresh database, a
fresh bucket.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from minio import Minio
from pydantic import SecretStr

from meterstream.settings import (
    KafkaSettings,
    PostgresSettings,
    S3Settings,
    SchemaRegistrySettings,
    Settings,
    WorkerSettings,
    load_settings,
)
from tests.services import providers
from tests.services.endpoints import KafkaEndpoint, PostgresEndpoint, S3Endpoint
from tests.services.registry import STARTED


def _announce(config: pytest.Config, before: int) -> None:
    """Write each newly started service to the test log as it starts, past output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    suspended = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with suspended:
        for line in STARTED.started[before:]:
            reporter.write_line(f"[services] {line}")


def _provide(request: pytest.FixtureRequest, make: Callable[[], Any]) -> Any:
    before = len(STARTED.started)
    endpoint = make()
    _announce(request.config, before)
    return endpoint


@pytest.fixture(scope="session")
def kafka_service(request: pytest.FixtureRequest) -> KafkaEndpoint:
    endpoint: KafkaEndpoint = _provide(request, providers.kafka_endpoint)
    return endpoint


@pytest.fixture(scope="session")
def schema_registry_service(request: pytest.FixtureRequest, kafka_service: KafkaEndpoint) -> str:
    """URL of a Confluent-compatible schema registry (``.../apis/ccompat/v7`` for Apicurio)."""
    url: str = _provide(request, lambda: providers.schema_registry_url(kafka_service))
    return url


@pytest.fixture(scope="session")
def postgres_service(request: pytest.FixtureRequest) -> PostgresEndpoint:
    endpoint: PostgresEndpoint = _provide(request, providers.postgres_endpoint)
    return endpoint


@pytest.fixture(scope="session")
def s3_service(request: pytest.FixtureRequest) -> S3Endpoint:
    endpoint: S3Endpoint = _provide(request, providers.s3_endpoint)
    return endpoint


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STARTED.started:
        terminalreporter.section("services used by this run")
        for line in STARTED.started:
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    STARTED.stop_all()


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings_factory(request: pytest.FixtureRequest, unique_id: str) -> Callable[..., Settings]:
    """Settings pointing at the test services, with this test's own topics and app id.

    ``settings_factory(postgres=True, s3=True)`` starts those services too; keyword groups
    (``worker=WorkerSettings(...)``) override the rest.
    """

    def make(
        *, kafka: bool = True, postgres: bool = False, s3: bool = False, **groups: Any
    ) -> Settings:
        values: dict[str, Any] = {}
        if kafka:
            endpoint: KafkaEndpoint = request.getfixturevalue("kafka_service")
            values["kafka"] = KafkaSettings(
                bootstrap_servers=endpoint.bootstrap_servers,
                topic_prefix=f"t{unique_id}.",
                partitions=4,
            )
            values["schema_registry"] = SchemaRegistrySettings(url=endpoint.schema_registry_url)
            values["worker"] = WorkerSettings(
                app_id=f"w{unique_id}", data_dir=request.getfixturevalue("tmp_path") / "worker"
            )
        if postgres:
            pg: PostgresEndpoint = request.getfixturevalue("pg_db")
            values["postgres"] = PostgresSettings(dsn=pg.dsn, password=SecretStr(pg.password))
        if s3:
            s3_endpoint: S3Endpoint = request.getfixturevalue("s3_service")
            values["s3"] = S3Settings(
                endpoint=s3_endpoint.endpoint,
                access_key=s3_endpoint.access_key,
                secret_key=SecretStr(s3_endpoint.secret_key),
            )
        values.update(groups)
        return load_settings(env_file_paths=(), **values)

    return make


@pytest.fixture
def pg_db(postgres_service: PostgresEndpoint, unique_id: str) -> Iterator[PostgresEndpoint]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = f"test_{unique_id}"
    with psycopg.connect(
        postgres_service.dsn, password=postgres_service.password, autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_service.dsn.rpartition("/")
    yield PostgresEndpoint(
        f"{base}/{name}",
        postgres_service.password,
        postgres_service.provider,
        postgres_service.timescaledb,
    )
    with psycopg.connect(
        postgres_service.dsn, password=postgres_service.password, autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def minio_client(s3_service: S3Endpoint) -> Minio:
    return Minio(
        s3_service.host,
        access_key=s3_service.access_key,
        secret_key=s3_service.secret_key,
        secure=s3_service.endpoint.startswith("https://"),
    )


@pytest.fixture
def bucket_factory(minio_client: Minio, unique_id: str) -> Iterator[Callable[[], str]]:
    """Makes uniquely named buckets; empties and removes them after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"test-{unique_id}-{len(made)}"
        minio_client.make_bucket(name)
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(Exception):
            for obj in minio_client.list_objects(name, recursive=True):
                minio_client.remove_object(name, obj.object_name)
            minio_client.remove_bucket(name)
