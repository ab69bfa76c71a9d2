"""Errors of the message contract: what went wrong with a record or a schema, and what to do.

A consumer routes a record by the *type* of the error, never by its text: every
:class:`DecodeError` (including :class:`UnknownSchemaError`) sends the record to the dead-letter
topic, while a :class:`RegistryError` means "the registry is away, retry later" and must not
dead-letter a good record.
"""

from __future__ import annotations

from typing import Self

from meterstream.errors import MeterstreamError


class DecodeError(MeterstreamError):
    """A record's bytes are not a valid message for this codec: send it to the DLQ and go on.

    ``str()`` reads ``cannot decode <topic>[<partition>]@<offset>: <reason>``; the location
    defaults to ``?[-1]@-1`` when the caller did not say where the bytes came from.
    """

    def __init__(
        self, reason: str, *, topic: str = "?", partition: int = -1, offset: int = -1
    ) -> None:
        super().__init__(reason, topic, partition, offset)
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __str__(self) -> str:
        return f"cannot decode {self.topic}[{self.partition}]@{self.offset}: {self.reason}"

    def located(self, topic: str, partition: int, offset: int) -> Self:
        """The same error (same type and reason) with the record's location filled in."""
        return type(self)(self.reason, topic=topic, partition=partition, offset=offset)


class UnknownSchemaError(DecodeError):
    """The writer schema is unknown here: a newer producer? Deploy the release that ships it."""


class EncodeError(MeterstreamError):
    """A record does not fit its schema (the message names the field): fix the producer."""


class IncompatibleSchemaError(MeterstreamError):
    """A schema change breaks FULL_TRANSITIVE compatibility: add defaults or aliases instead."""


class RegistryError(MeterstreamError):
    """The schema registry failed or is unreachable: check METERSTREAM_SCHEMA_REGISTRY_URL."""
