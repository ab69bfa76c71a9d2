"""One provider per service: returns an endpoint from the env, a container or a local process."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.services.endpoints import KafkaEndpoint, PostgresEndpoint, S3Endpoint
from tests.services.registry import STARTED
from tests.services.selection import provider_for

# Images for the Docker path; the compose stack pins the same ones.
REDPANDA_IMAGE = "docker.redpanda.com/redpandadata/redpanda:v24.2.18"
TIMESCALEDB_IMAGE = "timescale/timescaledb:2.17.2-pg16"
MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"


def _scratch(name: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"meterstream-test-{name}-"))
    STARTED.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
    return base


def kafka_endpoint() -> KafkaEndpoint:
    provider = provider_for("kafka")
    if provider == "env":
        return KafkaEndpoint(
            os.environ["METERSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
            os.environ.get("METERSTREAM_SCHEMA_REGISTRY_URL") or None,
            "env",
        )
    if provider == "docker":
        from testcontainers.community.kafka import RedpandaContainer

        container = RedpandaContainer(REDPANDA_IMAGE).start(timeout=120)
        STARTED.add_container(container, f"kafka: Redpanda container {REDPANDA_IMAGE}")
        return KafkaEndpoint(
            container.get_bootstrap_server(), container.get_schema_registry_address(), "docker"
        )
    from meterstream.devservices.kafka import KAFKA_VERSION, start_kafka

    started = time.monotonic()
    service = start_kafka(_scratch("kafka"))
    STARTED.add_process(service, time.monotonic() - started, f"Apache Kafka {KAFKA_VERSION}, KRaft")
    return KafkaEndpoint(service.env["METERSTREAM_KAFKA_BOOTSTRAP_SERVERS"], None, "local")


def postgres_endpoint() -> PostgresEndpoint:
    provider = provider_for("postgres")
    if provider == "env":
        return PostgresEndpoint(
            os.environ["METERSTREAM_POSTGRES_DSN"],
            os.environ.get("METERSTREAM_POSTGRES_PASSWORD", ""),
            "env",
        )
    if provider == "docker":
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(
            TIMESCALEDB_IMAGE,
            username="meterstream",
            password="meterstream",
            dbname="meterstream",
            driver=None,
        ).start()
        STARTED.add_container(container, f"postgres: TimescaleDB container {TIMESCALEDB_IMAGE}")
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5432)
        return PostgresEndpoint(
            f"postgresql://meterstream@{host}:{port}/meterstream", "meterstream", "docker", True
        )
    from meterstream.devservices.postgres import reachable_data_dir, start_postgres

    started = time.monotonic()
    data_dir = reachable_data_dir(_scratch("postgres"), persistent=False)
    STARTED.add_cleanup(lambda: shutil.rmtree(data_dir, ignore_errors=True))
    service = start_postgres(data_dir)
    STARTED.add_process(service, time.monotonic() - started, "PostgreSQL, initdb cluster")
    return PostgresEndpoint(
        service.env["METERSTREAM_POSTGRES_DSN"],
        service.env["METERSTREAM_POSTGRES_PASSWORD"],
        "local",
    )


def s3_endpoint() -> S3Endpoint:
    provider = provider_for("s3")
    if provider == "env":
        return S3Endpoint(
            os.environ["METERSTREAM_S3_ENDPOINT"],
            os.environ.get("METERSTREAM_S3_ACCESS_KEY", "meterstream"),
            os.environ.get("METERSTREAM_S3_SECRET_KEY", "meterstream-secret"),
            "env",
        )
    if provider == "docker":
        from testcontainers.minio import MinioContainer

        container = MinioContainer(
            MINIO_IMAGE, access_key="meterstream", secret_key="meterstream-secret"
        ).start()
        STARTED.add_container(container, f"s3: MinIO container {MINIO_IMAGE}")
        config = container.get_config()
        return S3Endpoint(
            f"http://{config['endpoint']}", config["access_key"], config["secret_key"], "docker"
        )
    from meterstream.devservices.minio import MINIO_VERSION, start_minio

    started = time.monotonic()
    service = start_minio(_scratch("minio"))
    STARTED.add_process(service, time.monotonic() - started, f"MinIO {MINIO_VERSION}")
    return S3Endpoint(
        service.env["METERSTREAM_S3_ENDPOINT"],
        service.env["METERSTREAM_S3_ACCESS_KEY"],
        service.env["METERSTREAM_S3_SECRET_KEY"],
        "local",
    )


def schema_registry_url(kafka: KafkaEndpoint) -> str:
    """A Confluent-compatible registry: the stack's, Redpanda's, or Apicurio as a local process."""
    if os.environ.get("METERSTREAM_SCHEMA_REGISTRY_URL"):
        return os.environ["METERSTREAM_SCHEMA_REGISTRY_URL"]
    if kafka.schema_registry_url:
        return kafka.schema_registry_url
    from meterstream.devservices.registry import APICURIO_VERSION, start_registry

    started = time.monotonic()
    service = start_registry(_scratch("registry"))
    STARTED.add_process(
        service, time.monotonic() - started, f"Apicurio Registry {APICURIO_VERSION}, ccompat API"
    )
    return service.env["METERSTREAM_SCHEMA_REGISTRY_URL"]
