"""Choose where test services come from: a running stack, Docker, or local processes.

Order, unless ``METERSTREAM_TEST_SERVICES`` (env|docker|local) forces one:
1. environment variables that point at a running stack (``METERSTREAM_KAFKA_BOOTSTRAP_SERVERS``,
   ``METERSTREAM_POSTGRES_DSN``, ``METERSTREAM_S3_ENDPOINT``), e.g. the compose stack;
2. a reachable Docker engine: testcontainers with Redpanda, TimescaleDB and MinIO;
3. local processes (Kafka from Maven Central jars, PostgreSQL from the OS, MinIO built with Go).
"""

from __future__ import annotations

import functools
import os

from tests.services.endpoints import Provider

FORCE_VARIABLE = "METERSTREAM_TEST_SERVICES"

ENV_VARIABLES = {
    "kafka": "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS",
    "postgres": "METERSTREAM_POSTGRES_DSN",
    "s3": "METERSTREAM_S3_ENDPOINT",
}


@functools.cache
def docker_reachable() -> bool:
    """True when a Docker engine answers a ping (the CLI alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def provider_for(service: str) -> Provider:
    forced = os.environ.get(FORCE_VARIABLE, "").strip().lower()
    if forced in ("env", "docker", "local"):
        return forced  # type: ignore[return-value]
    if os.environ.get(ENV_VARIABLES[service]):
        return "env"
    if docker_reachable():
        return "docker"
    return "local"
