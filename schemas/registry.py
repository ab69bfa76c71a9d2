"""The schema registry, seen from the codec: register, set compatibility, look up by id.

:class:`ConfluentRegistry` wraps confluent-kafka's ``SchemaRegistryClient`` (the
``confluent-kafka[schemaregistry]`` extra) and speaks the Confluent REST API, which Confluent
Schema Registry, Redpanda and Apicurio's ``ccompat`` API all serve. Anything with the three
methods of :class:`SchemaRegistry` can stand in for it, e.g. an in-memory fake in tests.

Subjects follow the TopicNameStrategy: values of topic ``T`` live under ``T-value``.
Schema ids are immutable, so every lookup is cached for the life of the process: after the
first record of a writer version, decoding costs no HTTP call.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Protocol

from schemas.errors import IncompatibleSchemaError, RegistryError, UnknownSchemaError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

FULL_TRANSITIVE: Final = "FULL_TRANSITIVE"

# Confluent's REST API answers with these HTTP statuses (error codes 40401-40403, 409, 42201).
_NOT_FOUND: Final = 404
_CONFLICT: Final = 409
_UNPROCESSABLE: Final = 422


def value_subject(topic: str) -> str:
    """The TopicNameStrategy subject for the values of ``topic``.

    >>> value_subject("meter.readings.v1")
    'meter.readings.v1-value'
    """
    return f"{topic}-value"


class SchemaRegistry(Protocol):
    """What the codec needs from a registry."""

    def register(self, subject: str, schema_json: str) -> int:
        """Register (or find) the schema under ``subject``; returns its global id."""
        ...

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level, e.g. ``FULL_TRANSITIVE``."""
        ...

    def schema_for_id(self, schema_id: int) -> dict[str, Any]:
        """The writer schema (parsed JSON) with this id; UnknownSchemaError if there is none."""
        ...


class ConfluentRegistry:
    """A Confluent-compatible schema registry at ``url``.

    Parameters
    ----------
    url:
        Base URL, e.g. ``http://localhost:8081`` (for Apicurio: ``.../apis/ccompat/v7``).
    client:
        A ready ``SchemaRegistryClient`` when it needs more settings (auth, TLS, retries);
        by default one is built from ``url`` alone.

    Errors: a schema the registry refuses as incompatible raises
    :class:`~schemas.errors.IncompatibleSchemaError`; an id it does not know raises
    :class:`~schemas.errors.UnknownSchemaError`; anything else (unreachable, 5xx after the
    client's retries) raises :class:`~schemas.errors.RegistryError`.
    """

    def __init__(self, url: str, *, client: SchemaRegistryClient | None = None) -> None:
        self.url = url
        self._client = client if client is not None else _new_client(url)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"ConfluentRegistry({self.url!r})"

    def register(self, subject: str, schema_json: str) -> int:
        key = (subject, schema_json)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        schema_class = _confluent().Schema
        try:
            schema_id = int(
                self._client.register_schema(subject, schema_class(schema_json, "AVRO"))
            )
        except Exception as exc:
            status = getattr(exc, "http_status_code", None)
            if status in (_CONFLICT, _UNPROCESSABLE):
                raise IncompatibleSchemaError(
                    f"the registry at {self.url} refuses the schema for subject {subject!r}: {exc}"
                ) from exc
            raise self._failed(f"register a schema under {subject!r}", exc) from exc
        self._ids[key] = schema_id
        return schema_id

    def set_compatibility(self, subject: str, level: str) -> None:
        try:
            self._client.set_compatibility(subject_name=subject, level=level)
        except Exception as exc:
            raise self._failed(f"set compatibility {level} on {subject!r}", exc) from exc

    def schema_for_id(self, schema_id: int) -> dict[str, Any]:
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            found = self._client.get_schema(schema_id)
        except Exception as exc:
            if getattr(exc, "http_status_code", None) == _NOT_FOUND:
                raise UnknownSchemaError(
                    f"schema id {schema_id} is unknown to the registry at {self.url}"
                ) from exc
            raise self._failed(f"fetch schema id {schema_id}", exc) from exc
        if (found.schema_type or "AVRO") != "AVRO":
            raise UnknownSchemaError(f"schema id {schema_id} is {found.schema_type}, not Avro")
        schema = json.loads(found.schema_str or "null")
        if not isinstance(schema, dict):
            raise UnknownSchemaError(f"schema id {schema_id} is not an Avro record schema")
        self._schemas[schema_id] = schema
        return schema

    def close(self) -> None:
        """Close the HTTP session (the registry object is unusable afterwards)."""
        self._client.close()

    def _failed(self, action: str, exc: Exception) -> RegistryError:
        return RegistryError(f"could not {action} at the registry {self.url}: {exc}")


def _confluent() -> Any:
    """confluent-kafka's registry module, imported on first use: only registry users need it."""
    try:
        from confluent_kafka import schema_registry
    except ImportError as exc:
        raise RegistryError(
            "the schema registry client needs an extra:"
            f" pip install 'confluent-kafka[schemaregistry]' ({exc})"
        ) from exc
    return schema_registry


def _new_client(url: str) -> SchemaRegistryClient:
    client: SchemaRegistryClient = _confluent().SchemaRegistryClient({"url": url})
    return client
