"""Settings of the connector: the Tibber source, the simulator, file replay and the producer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from meterstream.settings.base import Duration, Group, read_secret_file

# Tibber's public demo token: shared by everyone who tries the API, so it often meets 4429.
# Used only when METERSTREAM_TIBBER_DEMO=true is set explicitly, never as a silent default.
TIBBER_DEMO_TOKEN = "3A77EECF61BD445F47241A5A36202185C35AF3AF58609E19B53F3A8872AD7BE1-1"  # noqa: S105 - public, published by Tibber


class TibberSettings(Group):
    """Tibber's GraphQL API and the budget meterstream keeps towards it."""

    api_url: str = Field(
        "https://api.tibber.com/v1-beta/gql", description="Tibber GraphQL HTTP endpoint."
    )
    token: SecretStr | None = Field(None, description="Personal access token (secret).")
    token_file: Path | None = Field(
        None, description="File holding the token; read again before every reconnect."
    )
    demo: bool = Field(
        False,
        description="Use Tibber's shared demo token (a first look only: it is often rate-limited).",
    )
    homes: str = Field(
        "",
        description="Comma-separated home ids to subscribe; empty: every home with real-time data.",
    )
    stale_after: Duration = Field(
        60.0,
        gt=0,
        description="A home with no data for this long is resubscribed on the same socket.",
    )
    stale_backoff_max: Duration = Field(
        600.0, gt=0, description="Longest wait between resubscriptions of a home that stays silent."
    )
    watchdog_interval: Duration = Field(
        5.0, gt=0, description="How often data freshness is checked."
    )
    reconnect_min: Duration = Field(5.0, gt=0, description="Shortest wait before a new socket.")
    reconnect_max: Duration = Field(
        900.0, gt=0, description="Longest wait between reconnect attempts (backoff cap)."
    )
    healthy_after: Duration = Field(
        120.0,
        gt=0,
        description="A connection that stays up this long resets the reconnect backoff.",
    )
    rate_limited_backoff: Duration = Field(
        900.0, gt=0, description="Wait after Tibber refuses a socket with 4429 or HTTP 429."
    )
    sockets_per_hour: int = Field(
        10,
        ge=1,
        le=20,
        description="Hard budget of new sockets in any hour, whatever their cause "
        "(Tibber allows about 20 per token).",
    )
    ping_interval: Duration = Field(30.0, gt=0, description="Protocol ping interval on the socket.")
    pong_timeout: Duration = Field(
        15.0, gt=0, description="A socket without pong for this long is dead."
    )
    connect_timeout: Duration = Field(30.0, gt=0, description="Socket connect timeout.")
    ack_timeout: Duration = Field(15.0, gt=0, description="Wait for connection_ack.")
    http_timeout: Duration = Field(30.0, gt=0, description="Timeout of HTTP GraphQL calls.")

    @property
    def home_ids(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.homes.split(",") if h.strip())

    def resolved_token(self) -> SecretStr | None:
        """The token to use now: the file (re-read every time), the variable, or the demo token."""
        if self.token_file is not None:
            return read_secret_file(self.token_file, "METERSTREAM_TIBBER_TOKEN_FILE")
        if self.token is not None and self.token.get_secret_value():
            return self.token
        if self.demo:
            return SecretStr(TIBBER_DEMO_TOKEN)
        return None


AnomalyKind = Literal[
    "ev_unusual_hour", "stuck_appliance", "standby_creep", "phase_imbalance", "voltage_sag"
]


class SimSettings(Group):
    """The household simulator: the offline source for demos, tests and evaluation."""

    meters: int = Field(3, ge=1, le=100_000, description="Number of simulated meters.")
    interval: Duration = Field(2.0, gt=0, description="Event-time interval between readings.")
    speed: str = Field(
        "1",
        pattern=r"^(max|\d+(\.\d+)?)$",
        description="1 = real time, N = N times real time, max = as fast as possible.",
    )
    start: datetime | None = Field(
        None,
        description="Event-time start (ISO 8601 with offset). Empty: a bounded run ends now, "
        "an unbounded run faster than real time starts a day ago, a real-time run starts now.",
    )
    duration: Duration | None = Field(
        None, description="Event-time span to generate, then flush and exit; empty: forever."
    )
    seed: int = Field(42, description="Seed: the same seed gives the same readings and labels.")
    tz: str = Field("Europe/Oslo", description="IANA time zone of the simulated homes.")
    labels_file: Path | None = Field(
        None, description="Where to write the injected anomalies (JSON lines)."
    )
    anomalies: str = Field(
        "all",
        description="Comma-separated anomaly kinds to inject (ev_unusual_hour, stuck_appliance, "
        "standby_creep, phase_imbalance, voltage_sag), `all` or `none`.",
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-01-05T00:00:00+00:00")
        return value


class ReplaySettings(Group):
    """Replay of recorded readings from files or the lake."""

    path: str = Field(
        "", description="File, directory or s3://bucket/prefix of CSV, JSON lines or Parquet."
    )
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field(
        "auto", description="Input format; auto: from the file extension."
    )
    speed: str = Field(
        "max", pattern=r"^(max|\d+(\.\d+)?)$", description="1 = real time, N = scaled, max."
    )
    meter_id: str = Field(
        "", description="Meter id for files that have no meter_id column (e.g. a single house)."
    )


class ConnectorSettings(Group):
    """The producer side of the connector and its local state."""

    data_dir: Path = Field(
        Path("/var/lib/meterstream/connector"),
        description="Connector state: the rejected-token marker and the socket budget log.",
    )
    buffer_max_readings: int = Field(
        1_000_000,
        ge=1000,
        description="Readings kept while Kafka is unreachable; beyond it readings are dropped "
        "loudly and counted.",
    )
    message_timeout: Duration = Field(
        0.0,
        ge=0,
        description="How long the producer retries one record; 0 = until it is delivered.",
    )
    linger: Duration = Field(0.02, ge=0, description="Producer batching delay.")
    dedupe_memory: int = Field(
        64, ge=1, description="Recent timestamps remembered per meter to drop duplicates."
    )


class MetricsSettings(Group):
    """Prometheus metrics and health endpoints of long-running processes."""

    port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz (0 = off)."
    )
    host: str = Field("0.0.0.0", description="Address the metrics server binds.")  # noqa: S104
