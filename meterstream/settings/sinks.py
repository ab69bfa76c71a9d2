"""Settings of the sinks (scores into PostgreSQL, readings into the lake) and of the database.

Three groups: ``db`` (schema, TimescaleDB policies and roles: ``METERSTREAM_DB_*``), ``scores``
(the ``sink scores`` process: ``METERSTREAM_SCORES_*``) and ``lake`` (the ``sink lake`` process,
``lake compact`` and ``query``: ``METERSTREAM_LAKE_*``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from meterstream.settings.base import Duration, Group, read_secret_file
from meterstream.settings.services import check_dsn_has_no_password


class DbSettings(Group):
    """The PostgreSQL/TimescaleDB schema, its retention policies and its roles."""

    admin_dsn: str = Field(
        "postgresql://postgres@timescaledb:5432/meterstream",
        description="Connection used only by `meterstream db init` (creates roles, the "
        "extension and grants), without a password.",
    )
    admin_password: SecretStr | None = Field(None, description="Password of the admin DSN's user.")
    admin_password_file: Path | None = Field(None, description="File holding that password.")
    writer_role: str = Field(
        "meterstream",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="Role the sinks log in as (owns the tables; METERSTREAM_POSTGRES_DSN's user).",
    )
    reader_role: str = Field(
        "meterstream_reader",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="Read-only role for dashboards (Grafana).",
    )
    reader_password: SecretStr | None = Field(
        None, description="Password `db init` sets for the read-only role."
    )
    reader_password_file: Path | None = Field(None, description="File holding that password.")
    timescale: bool = Field(
        True,
        description="Use TimescaleDB (hypertables, compression, retention, continuous "
        "aggregates) when the extension is available; off: plain PostgreSQL everywhere.",
    )
    readings_retention: Duration = Field(
        90 * 86400.0,
        ge=0,
        description="TimescaleDB: drop readings chunks created this long ago (0 = keep). "
        "Judged by chunk creation time, so replayed old data is not dropped at once.",
    )
    compress_after: Duration = Field(
        7 * 86400.0,
        gt=0,
        description="TimescaleDB: compress chunks created this long ago.",
    )
    migrate_on_start: bool = Field(
        True, description="Sinks apply pending schema migrations when they start."
    )

    @field_validator("admin_dsn")
    @classmethod
    def _admin_dsn_has_no_password(cls, value: str) -> str:
        return check_dsn_has_no_password(value, "METERSTREAM_DB_ADMIN_PASSWORD")

    def resolved_admin_password(self) -> SecretStr | None:
        if self.admin_password_file is not None:
            return read_secret_file(self.admin_password_file, "METERSTREAM_DB_ADMIN_PASSWORD_FILE")
        return self.admin_password

    def resolved_reader_password(self) -> SecretStr | None:
        if self.reader_password_file is not None:
            return read_secret_file(
                self.reader_password_file, "METERSTREAM_DB_READER_PASSWORD_FILE"
            )
        return self.reader_password


class SinkCommon(Group):
    """Knobs every sink shares: back-off while a store is unreachable."""

    retry_initial: Duration = Field(
        0.5, gt=0, description="First wait after a failed write; doubles up to retry_max."
    )
    retry_max: Duration = Field(30.0, gt=0, description="Longest wait between write attempts.")
    session_timeout: Duration = Field(
        10.0,
        ge=6,
        le=300,
        description="Kafka session timeout: how soon a crashed sink's partitions go to a "
        "restarted or surviving one.",
    )


class ScoresSinkSettings(SinkCommon):
    """`meterstream sink scores`: scores (and live readings) into PostgreSQL."""

    group_id: str = Field(
        "meterstream-sink-scores",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka consumer group of the scores sink.",
    )
    readings: bool = Field(
        True, description="Also write meter.readings.v1 into the readings table (live panel)."
    )
    batch_rows: int = Field(
        5000, ge=1, description="Rows per write; a batch is written when full or old enough."
    )
    batch_max_age: Duration = Field(
        0.5, gt=0, description="Longest time a record waits in the batch before it is written."
    )


class LakeSettings(SinkCommon):
    """`meterstream sink lake`, `lake compact` and `query`: Parquet readings on S3."""

    bucket: str = Field(
        "meterstream-lake",
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="Bucket of the lake (created at start if missing).",
    )
    group_id: str = Field(
        "meterstream-sink-lake",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka consumer group of the lake sink.",
    )
    spool_dir: Path = Field(
        Path("/var/lib/meterstream/lake-spool"),
        description="Local disk where open Parquet files grow until they are uploaded.",
    )
    file_max_rows: int = Field(
        500_000, ge=1, description="A file is closed and uploaded after this many rows."
    )
    file_max_age: Duration = Field(
        60.0,
        gt=0,
        description="A file is closed when a record (reading or tick) arrives whose broker "
        "time is this much later than the file's first record: bounds lake latency in live "
        "operation without wall-clock rolls.",
    )
    row_group_rows: int = Field(
        65_536, ge=1000, description="Rows per Parquet row group (buffered in memory)."
    )
    expire_after_days: int = Field(
        0, ge=0, description="Lifecycle rule: delete raw files after N days (0 = keep)."
    )
    compact_min_age_days: int = Field(
        8,
        ge=1,
        description="`lake compact` refuses days younger than this (lateness plus the readings "
        "topic's retention), so a re-consumed record can never re-create a merged file.",
    )
