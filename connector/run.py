"""Build the connector from the settings and run it (the CLI's only entry into this package)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from connector.app import Connector, run_until_signalled
from connector.clock import Clock, SystemClock
from connector.metrics import ConnectorMetrics
from connector.producer import ReadingPublisher
from connector.sources.base import Source
from meterstream.health import HealthServer
from meterstream.kafka.topics import check_topics
from meterstream.settings import Settings
from schemas.codec import AvroCodec
from schemas.registry import ConfluentRegistry
from schemas.topics import READINGS

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 78  # sysexits EX_CONFIG: a rejected Tibber token, bad settings


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    summary: str


def readings_codec(settings: Settings, topic: str) -> AvroCodec:
    registry = (
        ConfluentRegistry(settings.schema_registry.url) if settings.schema_registry.url else None
    )
    return AvroCodec.for_schema("Reading", registry=registry, subject=f"{topic}-value")


def build_source(settings: Settings, clock: Clock, metrics: ConnectorMetrics) -> Source:
    if settings.source == "simulate":
        from connector.sources.simulate import SimulatedSource

        return SimulatedSource(settings.sim, clock)
    if settings.source == "replay":
        from connector.sources.replay import ReplaySource

        return ReplaySource(settings.replay, clock, settings.s3)
    from connector.sources.tibber import TibberSource

    return TibberSource(settings.tibber, settings.connector, clock, metrics)


def run_connector(settings: Settings, clock: Clock | None = None) -> Outcome:
    clock = clock or SystemClock()
    topic = settings.kafka.topic_prefix + READINGS
    log.info(
        "connector starting: source=%s topic=%s bootstrap=%s registry=%s partitions=%d",
        settings.source,
        topic,
        settings.kafka.bootstrap_servers,
        settings.schema_registry.url or "none (single-object encoding)",
        settings.kafka.partitions,
    )
    check_topics(settings, [topic])
    metrics = ConnectorMetrics()
    source = build_source(settings, clock, metrics)
    publisher = ReadingPublisher(
        settings.kafka,
        settings.connector,
        readings_codec(settings, topic),
        topic,
        metrics,
        on_full=source.on_full,
    )
    health = None
    if settings.metrics.port:
        health = HealthServer(
            metrics.registry, source.ready, settings.metrics.host, settings.metrics.port
        )
    connector = Connector(
        source,
        publisher,
        metrics,
        max_skew_s=settings.max_clock_skew,
        dedupe_memory=settings.connector.dedupe_memory,
        health=health,
        clock=clock,
    )
    from connector.sources.errors import FatalSourceError

    try:
        stats = asyncio.run(run_until_signalled(connector))
    except FatalSourceError as exc:
        log.error("%s", exc)
        return Outcome(exc.exit_code, f"connector stopped: {exc}")
    summary = (
        f"{source.summary()}; published {publisher.delivered:,} readings to {topic}"
        f", dropped {stats.dropped:,}, delivery failures {publisher.failed:,}"
    )
    return Outcome(EXIT_OK, summary)
