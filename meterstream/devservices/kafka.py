"""A single-node Apache Kafka 4 broker (KRaft, combined mode) run from Maven Central jars.

The jars are resolved once by Maven from ``kafka-pom.xml`` into the cache; each start formats a
fresh (or reuses an existing) log directory and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import uuid
from importlib import resources
from pathlib import Path

from meterstream.devservices.process import (
    RunningService,
    free_port,
    run_checked,
    spawn,
    wait_until_ready,
)
from meterstream.devservices.tools import cache_dir, java_binary, require

KAFKA_VERSION = "4.1.1"

# Tuned for a 2-core machine shared with the services under test: a small heap, the serial
# collector, no rebalance delay (its 3 s default is paid on every group join) and one partition
# for internal topics. No automatic topic creation: meterstream creates its topics itself.
_BROKER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
log.cleaner.backoff.ms=1000
num.network.threads=2
num.io.threads=2
background.threads=2
"""


def kafka_libs() -> Path:
    """The broker's jars, resolved from Maven Central on first use (needs mvn and Java)."""
    libs = cache_dir() / "kafka" / KAFKA_VERSION / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = require("mvn", "install Maven with `apt-get install -y maven`")
    java_binary()
    pom = resources.files("meterstream.devservices") / "kafka-pom.xml"
    with resources.as_file(pom) as pom_path:
        run_checked(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom_path),
                f"-Dmaven.repo.local={cache_dir() / 'm2'}",
                f"-Dkafka.version={KAFKA_VERSION}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
                "-DincludeScope=runtime",
            ],
            what=f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central",
        )
    marker.write_text(KAFKA_VERSION)
    return libs


def _cluster_id() -> str:
    # KRaft wants a base64url-encoded UUID without padding (22 characters).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _java_argv(heap: str, libs: Path, main: str, *args: str) -> list[str]:
    log_config = resources.files("meterstream.devservices") / "kafka-log4j2.properties"
    return [
        java_binary(),
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def start_kafka(
    data_dir: Path,
    *,
    port: int | None = None,
    heap: str = "768m",
    timeout_s: float = 90.0,
) -> RunningService:
    """Start (formatting first if new) a broker whose logs live in ``data_dir``."""
    libs = kafka_libs()
    port = port or free_port()
    controller_port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "kraft-logs"
    properties = data_dir / "server.properties"
    properties.write_text(
        _BROKER_PROPERTIES.format(port=port, controller_port=controller_port, log_dir=log_dir)
    )
    log_path = data_dir / "kafka.log"
    if not (log_dir / "meta.properties").exists():
        run_checked(
            _java_argv(
                "256m",
                libs,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={_cluster_id()}",
                "-c",
                str(properties),
                "--ignore-formatted",
            ),
            what="formatting the KRaft log directory",
        )
    env = {**os.environ, "KAFKA_HEAP_OPTS": f"-Xmx{heap}"}
    process = spawn(
        _java_argv(heap, libs, "kafka.Kafka", str(properties)), log_path=log_path, env=env
    )
    bootstrap = f"127.0.0.1:{port}"
    wait_until_ready(
        f"Kafka {KAFKA_VERSION}",
        lambda: _broker_answers(bootstrap),
        process=process,
        log_path=log_path,
        timeout_s=timeout_s,
    )
    return RunningService(
        name="kafka",
        pid=process.pid,
        log_path=log_path,
        data_dir=data_dir,
        env={"METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap},
    )


def _broker_answers(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    metadata = admin.list_topics(timeout=2)
    return bool(metadata.brokers)
