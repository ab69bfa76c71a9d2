"""The command line: help, version, config masking and the exit code of bad settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from meterstream.cli import EXIT_CONFIG, main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("config", "topics", "version", "dev"):
        assert command in result.output


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("meterstream ")
    assert "faust-streaming 0.15.3" in result.output


def test_config_masks_secrets(runner: CliRunner) -> None:
    env = {
        "METERSTREAM_POSTGRES_PASSWORD": "a-real-pg-password",
        "METERSTREAM_S3_SECRET_KEY": "a-real-s3-secret",
        "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
    }
    result = runner.invoke(main, ["config"], env=env)
    assert result.exit_code == 0, result.output
    assert "METERSTREAM_KAFKA_BOOTSTRAP_SERVERS" in result.output
    assert "broker:9092" in result.output
    assert "a-real-pg-password" not in result.output
    assert "a-real-s3-secret" not in result.output
    json_result = runner.invoke(main, ["config", "--json"], env=env)
    assert '"METERSTREAM_POSTGRES_PASSWORD": "**********"' in json_result.output


def test_bad_settings_exit_with_ex_config(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config"], env={"METERSTREAM_KAFKA_PARTITIONS": "zero"})
    assert result.exit_code == EXIT_CONFIG
    assert "METERSTREAM_KAFKA_PARTITIONS" in result.output
