"""`meterstream connector --source simulate`: bounded, deterministic runs into Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from connector.simulator import read_labels
from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings
from schemas.topics import READINGS
from tests.integration.kafka_helpers import read_all


def _simulate(settings: Settings, tmp_path: Path, labels: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp_path / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "meterstream.cli",
            "connector",
            "--source",
            "simulate",
            "--sim-meters",
            "3",
            "--sim-start",
            "2026-01-05T00:00:00+00:00",
            "--sim-duration",
            "1d",
            "--sim-interval",
            "10s",
            "--sim-speed",
            "max",
            "--sim-seed",
            "11",
            "--sim-labels-file",
            str(labels),
            "--sim-anomalies",
            "voltage_sag,stuck_appliance",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_bounded_simulation_publishes_everything_once_and_deterministically(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    first_settings = settings_factory()
    ensure_topics(first_settings)
    first = _simulate(first_settings, tmp_path / "a", tmp_path / "a-labels.jsonl")
    assert first.returncode == 0, first.stderr
    expected = 3 * 86400 // 10
    assert f"published {expected:,} readings" in first.stderr, first.stderr

    topic = first_settings.kafka.topic_prefix + READINGS
    records = read_all(first_settings.kafka.bootstrap_servers, topic, expect=expected)
    keys = [(r.value["meter_id"], r.value["ts"]) for r in records]
    assert len(keys) == expected
    assert len(set(keys)) == expected
    assert {r.value["source"] for r in records} == {"simulator"}

    # The same seed into another set of topics gives the same readings, value for value.
    second_settings = first_settings.model_copy(
        update={
            "kafka": first_settings.kafka.model_copy(
                update={"topic_prefix": first_settings.kafka.topic_prefix + "again."}
            )
        }
    )
    ensure_topics(second_settings)
    second = _simulate(second_settings, tmp_path / "b", tmp_path / "b-labels.jsonl")
    assert second.returncode == 0, second.stderr
    again = read_all(
        second_settings.kafka.bootstrap_servers,
        second_settings.kafka.topic_prefix + READINGS,
        expect=expected,
    )

    def values(rs):
        return sorted(
            (r.value["meter_id"], r.value["ts"], r.value["power_w"], r.value["voltage_l1_v"])
            for r in rs
        )

    assert values(records) == values(again)
    labels_a = (tmp_path / "a-labels.jsonl").read_text()
    assert labels_a == (tmp_path / "b-labels.jsonl").read_text()
    labels = read_labels(labels_a.splitlines())
    assert labels, "a day of 3 meters should contain some injected anomalies"
    for label in labels:
        assert label.kind in ("voltage_sag", "stuck_appliance")
