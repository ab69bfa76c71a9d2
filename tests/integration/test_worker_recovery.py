"""The worker's promise: a crash at any point and a restart give the same scores, none missing.

A reference worker scores a fixed input without interruption. Other workers (other app ids, so
their state and offsets are their own) score the same input but SIGKILL themselves at a named
fault point, restart, and finish. Per (meter, window) their scores must equal the reference's,
value for value. Fault points make the crash phases deterministic instead of hoping a random kill
lands in the interesting place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from meterstream.kafka.topics import ensure_topics
from meterstream.settings import Settings, WorkerSettings
from tests.integration.sink_helpers import committed_behind
from tests.integration.worker_helpers import (
    comparable,
    score_ends,
    start_worker,
    wait_for_windows,
    wait_until_stable,
)

METERS = 3
HOURS = 2
WINDOWS = METERS * HOURS * 60


def _publish(
    settings: Settings, tmp: Path, start: str, duration: str, speed: str = "max", seed: int = 5
) -> None:
    env = {
        **os.environ,
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "METERSTREAM_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "METERSTREAM_CONNECTOR_DATA_DIR": str(tmp / "connector"),
        "METERSTREAM_METRICS_PORT": "0",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meterstream.cli",
            "connector",
            "--source",
            "simulate",
            "--sim-meters",
            str(METERS),
            "--sim-start",
            start,
            "--sim-duration",
            duration,
            "--sim-interval",
            "5s",
            "--sim-speed",
            speed,
            "--sim-seed",
            str(seed),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def scored_input(tmp_path_factory: pytest.TempPathFactory, kafka_service) -> tuple[Settings, dict]:
    """Readings of 3 simulated meters for 2 hours, and the scores of an uninterrupted worker."""
    from meterstream.settings import KafkaSettings, load_settings

    tmp = tmp_path_factory.mktemp("recovery")
    settings = load_settings(
        env_file_paths=(),
        kafka=KafkaSettings(
            bootstrap_servers=kafka_service.bootstrap_servers,
            topic_prefix="recovery.",
            partitions=4,
        ),
    )
    ensure_topics(settings)
    _publish(settings, tmp, "2026-01-05T00:00:00+00:00", f"{HOURS}h", seed=3)
    reference_settings = settings.model_copy(update={"worker": WorkerSettings(app_id="ref")})
    ensure_topics(reference_settings)
    worker = start_worker(
        reference_settings, app_id="ref", data_dir=tmp / "ref", log_path=tmp / "ref.log"
    )
    try:
        reference = wait_for_windows(settings, "ref-", WINDOWS)
    finally:
        assert worker.stop() == 0, worker.output()
    return settings, reference


def _recover(
    scored_input: tuple[Settings, dict],
    tmp_path: Path,
    app_id: str,
    fault: str,
    *,
    delete_data_dir: bool,
    **env: str,
) -> None:
    settings, _ = scored_input
    ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id=app_id)}))
    data_dir = tmp_path / "data"
    log_path = tmp_path / "worker.log"
    crashing = start_worker(
        settings,
        app_id=app_id,
        data_dir=data_dir,
        log_path=log_path,
        METERSTREAM_FAULT=fault,
        **env,
    )
    code = crashing.process.wait(timeout=120)
    assert code == -9, (
        f"the fault point {fault} was not reached (exit {code}):\n{crashing.output()[-3000:]}"
    )
    if delete_data_dir:
        shutil.rmtree(data_dir)
    _restart_and_compare(scored_input, app_id, data_dir, log_path, **env)


def _restart_and_compare(
    scored_input: tuple[Settings, dict],
    app_id: str,
    data_dir: Path,
    log_path: Path,
    *,
    since: dict[int, int] | None = None,
    **env: str,
) -> None:
    """Restart the worker; its scores (published after ``since``) must equal the reference's."""
    settings, reference = scored_input
    restarted = start_worker(settings, app_id=app_id, data_dir=data_dir, log_path=log_path, **env)
    try:
        recovered = wait_for_windows(settings, f"{app_id}-", WINDOWS, since=since)
    finally:
        code = restarted.stop()
    assert code == 0, restarted.output()[-3000:]
    assert set(recovered) == set(reference), "windows missing or extra after recovery"
    different = [k for k in reference if comparable(reference[k]) != comparable(recovered[k])]
    assert not different, f"{len(different)} windows differ, e.g. {different[:3]}"


@pytest.mark.parametrize(
    ("fault", "delete_data_dir"),
    [
        ("after_state_write@4", False),
        ("after_state_write@7", True),
        ("after_output@5", False),
        ("mid_snapshot@3", False),
        ("after_manifest@2", True),
    ],
)
def test_sigkill_at_a_fault_point_then_restart_gives_the_same_scores(
    scored_input: tuple[Settings, dict], tmp_path: Path, fault: str, delete_data_dir: bool
) -> None:
    app_id = (
        "rec-" + fault.replace("@", "-").replace("_", "-") + ("-del" if delete_data_dir else "")
    )
    _recover(scored_input, tmp_path, app_id, fault, delete_data_dir=delete_data_dir)


def test_state_written_once_a_second_recovers_the_same_way(
    scored_input: tuple[Settings, dict], tmp_path: Path
) -> None:
    """A flush interval: more applied-but-unwritten records to redo after a crash."""
    _recover(
        scored_input,
        tmp_path,
        "rec-flush-1s",
        "after_output@6",
        delete_data_dir=False,
        METERSTREAM_WORKER_FLUSH_INTERVAL="1s",
    )


def test_offsets_committed_before_any_state_was_written_lose_nothing(
    scored_input: tuple[Settings, dict], tmp_path: Path
) -> None:
    """Killed after Faust committed the whole input but before any state flush: the state has
    no position at all while the group is at the end. The restarted worker must read the
    partitions from their start (and so score every window again), not from the group's offset."""
    settings, _ = scored_input
    app_id = "rec-never-flushed"
    ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id=app_id)}))
    data_dir, log_path = tmp_path / "data", tmp_path / "worker.log"
    crashing = start_worker(
        settings,
        app_id=app_id,
        data_dir=data_dir,
        log_path=log_path,
        METERSTREAM_WORKER_FLUSH_INTERVAL="10m",
        # No snapshot due within the input, so the core never asks for an early flush either.
        METERSTREAM_WORKER_SNAPSHOT_EVERY="1000",
    )
    deadline = time.monotonic() + 90
    while committed_behind(settings, app_id, ["meter.readings.v1"]) > 0:
        assert time.monotonic() < deadline, "the worker did not commit its input within 90 s"
        time.sleep(0.5)
    crashing.kill()
    _restart_and_compare(
        scored_input,
        app_id,
        data_dir,
        log_path,
        since=score_ends(settings),
        METERSTREAM_WORKER_SNAPSHOT_EVERY="1000",
    )


def test_an_error_in_a_batch_stops_the_worker_and_a_restart_loses_nothing(
    scored_input: tuple[Settings, dict], tmp_path: Path
) -> None:
    """An exception while a batch is applied (here injected after the records are applied and
    before the scores leave) must stop the worker with an error, not let Faust restart the agent
    past an unacked batch; the restart then gives the same scores."""
    settings, _ = scored_input
    app_id = "rec-batch-error"
    ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id=app_id)}))
    data_dir, log_path = tmp_path / "data", tmp_path / "worker.log"
    failing = start_worker(
        settings,
        app_id=app_id,
        data_dir=data_dir,
        log_path=log_path,
        METERSTREAM_FAULT="batch_applied@5:raise",
    )
    code = failing.process.wait(timeout=120)
    assert code not in (0, -9), f"exit {code}:\n{failing.output()[-3000:]}"
    assert "InjectedFault" in failing.output()
    _restart_and_compare(scored_input, app_id, data_dir, log_path)


def test_a_rebalance_mid_stream_and_a_dead_worker_lose_nothing(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two workers share the partitions, one dies mid-stream, the other takes over."""
    settings = settings_factory()
    ensure_topics(settings)
    for app_id in ("rebal", "rebal-ref"):
        ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id=app_id)}))
    _publish(settings, tmp_path, "2026-01-05T00:00:00+00:00", "40m")
    first = start_worker(
        settings,
        app_id="rebal",
        data_dir=tmp_path / "w1",
        log_path=tmp_path / "w1.log",
        instance="w1",
    )
    wait_for_windows(settings, "rebal-", 40, timeout_s=90)
    second = start_worker(
        settings,
        app_id="rebal",
        data_dir=tmp_path / "w2",
        log_path=tmp_path / "w2.log",
        instance="w2",
    )
    time.sleep(8)  # the group rebalances: the partitions are split between the two
    _publish(settings, tmp_path, "2026-01-05T00:40:00+00:00", "40m")
    time.sleep(3)
    first.kill()  # SIGKILL: its partitions move to the second worker after the session timeout
    _publish(settings, tmp_path, "2026-01-05T01:20:00+00:00", "40m")
    try:
        # The pauses between the phases are silences in arrival time: ticks close windows early
        # there, and a few readings after a pause are late. The log decides that, so the
        # reference (reading the same log, ticks included) must decide it the same way.
        recovered = wait_until_stable(settings, "rebal-", minimum=WINDOWS - 30)
    finally:
        assert second.stop() == 0, second.output()[-3000:]
    reference_worker = start_worker(
        settings, app_id="rebal-ref", data_dir=tmp_path / "ref", log_path=tmp_path / "ref.log"
    )
    try:
        reference = wait_until_stable(settings, "rebal-ref-", minimum=len(recovered))
    finally:
        assert reference_worker.stop() == 0
    assert set(recovered) == set(reference)
    different = [k for k in reference if comparable(reference[k]) != comparable(recovered[k])]
    assert not different, f"{len(different)} windows differ, e.g. {different[:3]}"


def test_live_and_max_speed_replays_give_the_same_scores(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The worker scores while readings arrive at 600x real time, and again on a max-speed copy."""
    live = settings_factory()
    fast = live.model_copy(
        update={
            "kafka": live.kafka.model_copy(
                update={"topic_prefix": live.kafka.topic_prefix + "fast."}
            )
        }
    )
    for settings, app_id in ((live, "speed-live"), (fast, "speed-fast")):
        ensure_topics(settings)
        ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id=app_id)}))
    worker = start_worker(
        live, app_id="speed-live", data_dir=tmp_path / "live", log_path=tmp_path / "live.log"
    )
    try:
        _publish(live, tmp_path / "a", "2026-01-05T00:00:00+00:00", "2h", speed="600")
        live_scores = wait_for_windows(live, "speed-live-", WINDOWS, timeout_s=120)
    finally:
        assert worker.stop() == 0
    _publish(fast, tmp_path / "b", "2026-01-05T00:00:00+00:00", "2h", speed="max")
    worker = start_worker(
        fast, app_id="speed-fast", data_dir=tmp_path / "fast", log_path=tmp_path / "fast.log"
    )
    try:
        fast_scores = wait_for_windows(fast, "speed-fast-", WINDOWS, timeout_s=120)
    finally:
        assert worker.stop() == 0
    assert set(live_scores) == set(fast_scores)
    different = [k for k in live_scores if comparable(live_scores[k]) != comparable(fast_scores[k])]
    assert not different, f"{len(different)} windows differ, e.g. {different[:3]}"


def test_a_poison_record_goes_to_the_dlq_and_the_worker_keeps_scoring(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    from meterstream.dlq import read_dead_letters
    from meterstream.kafka.clients import producer_config
    from schemas.topics import READINGS

    settings = settings_factory()
    ensure_topics(settings)
    ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id="poison")}))
    producer = Producer(producer_config(settings.kafka))
    for value in (
        b"\x00\x00\x00\x00\x07garbage",
        b"not avro at all",
        b"\xc3\x01" + b"\x00" * 8 + b"x",
    ):
        producer.produce(settings.kafka.topic_prefix + READINGS, key=b"sim-0001", value=value)
    assert producer.flush(10) == 0
    _publish(settings, tmp_path, "2026-01-05T00:00:00+00:00", "30m")
    worker = start_worker(
        settings, app_id="poison", data_dir=tmp_path / "w", log_path=tmp_path / "w.log"
    )
    try:
        scores = wait_for_windows(settings, "poison-", METERS * 30)
    finally:
        assert worker.stop() == 0
    assert len(scores) == METERS * 30
    letters = list(read_dead_letters(settings))
    assert len(letters) == 3
    assert {letter.headers["meterstream-error-type"] for letter in letters} <= {
        "DecodeError",
        "UnknownSchemaError",
    }
    assert all(letter.headers["meterstream-source-topic"].endswith(READINGS) for letter in letters)
    assert "Traceback" not in worker.output()


def test_evicting_models_from_memory_changes_no_score(
    scored_input: tuple[Settings, dict], tmp_path: Path
) -> None:
    """With room for one model, every other meter's model is rebuilt from snapshot + vectors."""
    settings, reference = scored_input
    ensure_topics(settings.model_copy(update={"worker": WorkerSettings(app_id="evict")}))
    worker = start_worker(
        settings,
        app_id="evict",
        data_dir=tmp_path / "w",
        log_path=tmp_path / "w.log",
        METERSTREAM_WORKER_MODEL_CACHE="1",
    )
    try:
        scores = wait_for_windows(settings, "evict-", WINDOWS)
    finally:
        assert worker.stop() == 0
    different = [k for k in reference if comparable(reference[k]) != comparable(scores[k])]
    assert not different, f"{len(different)} windows differ, e.g. {different[:3]}"
