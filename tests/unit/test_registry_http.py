"""ConfluentRegistry and the registry-backed codec against a fake registry on 127.0.0.1.

The fake answers with the recorded bodies in ``fixtures/registry/`` and logs every request, so
the tests see exactly what confluent-kafka's SchemaRegistryClient sends over HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.codec import AvroCodec
from schemas.errors import IncompatibleSchemaError, RegistryError, UnknownSchemaError
from schemas.loader import current_schema
from schemas.registry import ConfluentRegistry, value_subject

FIXTURES = Path(__file__).parent / "fixtures" / "registry"
SUBJECT = "meter.readings.v1-value"
RECORD = {
    "meter_id": "home-1",
    "source": "tibber",
    "ts": 1_700_000_000_000_000,
    "received_at": 1_700_000_000_100_000,
    "power_w": 812.5,
}


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class FakeRegistry:
    """Routes (method, path) to (status, fixture file); unknown routes answer 404."""

    url: str = ""
    routes: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, fixture: str) -> None:
        self.routes[(method, path)] = (status, fixture)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.path) == (method, path))


def _handler_for(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.requests.append(Request(self.command, path, json.loads(raw) if raw else None))
            status, fixture = fake.routes.get(
                (self.command, path), (404, "error_schema_not_found.json")
            )
            body = (FIXTURES / fixture).read_bytes()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a CI proxy must not see local requests
    registry = FakeRegistry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(registry))
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits for it, and the default 0.5 s adds up.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _registry_happy_path(fake: FakeRegistry) -> None:
    fake.answer("PUT", f"/config/{SUBJECT}", 200, "config_ok.json")
    fake.answer("POST", f"/subjects/{SUBJECT}/versions", 200, "register_ok.json")
    fake.answer("GET", "/schemas/ids/5", 200, "schema_by_id_reading_v1.json")


def _no_retries(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "max.retries": 0})


def test_codec_sets_full_transitive_then_registers_under_the_topic_subject(
    fake: FakeRegistry,
) -> None:
    _registry_happy_path(fake)
    subject = value_subject("meter.readings.v1")
    codec = AvroCodec.for_schema("Reading", registry=ConfluentRegistry(fake.url), subject=subject)

    assert [(r.method, r.path) for r in fake.requests] == [
        ("PUT", f"/config/{SUBJECT}"),
        ("POST", f"/subjects/{SUBJECT}/versions"),
    ]
    assert fake.requests[0].body == {"compatibility": "FULL_TRANSITIVE"}
    registered = fake.requests[1].body
    assert registered["schemaType"] == "AVRO"
    assert json.loads(registered["schema"]) == current_schema("Reading")
    assert (codec.schema_id, codec.subject) == (17, SUBJECT)


def test_confluent_frame_is_zero_byte_big_endian_id_then_the_avro_body(
    fake: FakeRegistry,
) -> None:
    _registry_happy_path(fake)
    codec = AvroCodec.for_schema("Reading", registry=ConfluentRegistry(fake.url), subject=SUBJECT)
    single_object = AvroCodec.for_schema("Reading").encode(RECORD)
    framed = codec.encode(RECORD)
    assert framed[:5] == bytes([0, 0, 0, 0, 17])
    assert framed[5:] == single_object[10:]  # same Avro body, different header
    assert codec.decode(framed)["power_w"] == 812.5
    assert fake.calls("GET", "/schemas/ids/17") == 0  # its own id needs no lookup


def test_writer_schemas_are_fetched_once_per_id(fake: FakeRegistry) -> None:
    _registry_happy_path(fake)
    registry = ConfluentRegistry(fake.url)
    codec = AvroCodec.for_schema("Reading", registry=registry, subject=SUBJECT)
    body = codec.encode(RECORD)[5:]
    from_v1_producer = bytes([0, 0, 0, 0, 5]) + body
    for offset in range(50):
        assert codec.decode(from_v1_producer, offset=offset)["meter_id"] == "home-1"
    assert fake.calls("GET", "/schemas/ids/5") == 1

    second = AvroCodec.for_schema("Reading", registry=registry, subject=SUBJECT)
    second.decode(from_v1_producer)
    assert fake.calls("GET", "/schemas/ids/5") == 1  # the registry object caches too
    assert fake.calls("POST", f"/subjects/{SUBJECT}/versions") == 1


def test_unknown_id_is_an_unknown_schema_error_with_the_location(fake: FakeRegistry) -> None:
    _registry_happy_path(fake)
    codec = AvroCodec.for_schema("Reading", registry=ConfluentRegistry(fake.url), subject=SUBJECT)
    with pytest.raises(UnknownSchemaError) as caught:
        codec.decode(bytes([0, 0, 0, 0, 99]) + b"\x00", topic="meter.readings.v1", offset=4)
    assert str(caught.value).startswith(
        "cannot decode meter.readings.v1[-1]@4: schema id 99 is unknown to the registry"
    )


def test_a_refused_schema_is_an_incompatible_schema_error(fake: FakeRegistry) -> None:
    fake.answer("PUT", f"/config/{SUBJECT}", 200, "config_ok.json")
    fake.answer("POST", f"/subjects/{SUBJECT}/versions", 409, "error_incompatible.json")
    with pytest.raises(IncompatibleSchemaError, match="phase_count"):
        AvroCodec.for_schema("Reading", registry=ConfluentRegistry(fake.url), subject=SUBJECT)


def test_a_failing_registry_is_a_registry_error_not_a_decode_error(fake: FakeRegistry) -> None:
    fake.answer("PUT", f"/config/{SUBJECT}", 500, "error_backend.json")
    registry = ConfluentRegistry(fake.url, client=_no_retries(fake.url))
    with pytest.raises(RegistryError, match="backend data store"):
        AvroCodec.for_schema("Reading", registry=registry, subject=SUBJECT)

    _registry_happy_path(fake)
    codec = AvroCodec.for_schema("Reading", registry=registry, subject=SUBJECT)
    fake.answer("GET", "/schemas/ids/6", 500, "error_backend.json")
    with pytest.raises(RegistryError):
        codec.decode(bytes([0, 0, 0, 0, 6]) + b"\x00")


def test_an_unreachable_registry_is_a_registry_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    registry = ConfluentRegistry(url, client=_no_retries(url))
    with pytest.raises(RegistryError, match="could not set compatibility"):
        registry.set_compatibility(SUBJECT, "FULL_TRANSITIVE")
    registry.close()


def test_an_unknown_id_is_asked_for_once(fake: FakeRegistry) -> None:
    _registry_happy_path(fake)
    codec = AvroCodec.for_schema("Reading", registry=ConfluentRegistry(fake.url), subject=SUBJECT)
    for offset in range(20):
        with pytest.raises(UnknownSchemaError):
            codec.decode(bytes([0, 0, 0, 0, 99]) + b"\x00", offset=offset)
    assert fake.calls("GET", "/schemas/ids/99") == 1
