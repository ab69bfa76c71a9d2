"""Error types shared by every meterstream component.

Each class is one line plus a docstring that tells the operator what to do. Components
wrap library errors with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations


class MeterstreamError(Exception):
    """Root of every error meterstream raises on purpose."""


class ConfigError(MeterstreamError):
    """A setting is missing or invalid: fix the named ``METERSTREAM_*`` variable and start again."""


class TopicMismatchError(MeterstreamError):
    """A live topic disagrees with the settings (partition count, cleanup policy, ...).

    Changing the partition count of a keyed topic moves meters between partitions and breaks
    per-meter state; re-create the topics or set ``METERSTREAM_KAFKA_PARTITIONS`` to match.
    """


class MissingToolError(MeterstreamError):
    """A program the dev services need (java, mvn, go, PostgreSQL) is not installed."""


class ServiceStartError(MeterstreamError):
    """A local service did not start; the message carries the tail of its log."""
