"""Schema registration waits for a registry that is briefly unavailable (a 5xx,
or nothing listening) and gives a clear error when it stays away; a refusal
(409, 422) is not retried. The real confluent-kafka client against a local
stand-in of the registry's Confluent API."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from producer import avro
from producer.avro import SchemaRegistrationError, register

SCHEMA = json.dumps({"type": "record", "name": "P", "fields": [{"name": "id", "type": "string"}]})


@pytest.fixture
def registry():
    """Answers `failures` requests with a 500 (like Apicurio whose database went
    away), then like a registry with an empty subject; `register_status` for the
    registration itself."""
    state = {"failures": 0, "requests": 0, "register_status": 200}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state["requests"] += 1
            if state["failures"] > 0:
                state["failures"] -= 1
                return self._answer(500, {"error_code": 50001, "message": "FATAL: terminating connection"})
            if self.path.startswith("/config/"):
                if self.command == "GET":
                    return self._answer(404, {"error_code": 40408, "message": "no compatibility level"})
                return self._answer(200, {"compatibility": "BACKWARD"})
            if state["register_status"] == 409:
                return self._answer(409, {"error_code": 409, "message": "Schema being registered is incompatible"})
            return self._answer(200, {"id": 42})

        do_GET = do_PUT = do_POST = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the client's own retries off (it retries a 5xx 3 times, quickly): what is seen is ours
    state["client"] = SchemaRegistryClient(
        {"url": f"http://127.0.0.1:{server.server_port}", "timeout": 5, "max.retries": 0}
    )
    yield state
    server.shutdown()


def test_a_registry_answering_500_for_a_moment_is_waited_for(registry, caplog):
    registry["failures"] = 2
    with caplog.at_level(logging.WARNING, logger="producer"):
        assert register(registry["client"], "tweets-value", SCHEMA) == 42
    retries = [r.getMessage() for r in caplog.records if "schema registry unavailable" in r.getMessage()]
    assert len(retries) == 2, retries


def test_a_registry_that_stays_unavailable_fails_with_a_clear_error(registry, monkeypatch):
    monkeypatch.setattr(avro, "REGISTER_ATTEMPTS", 3)
    registry["failures"] = 100
    with pytest.raises(SchemaRegistrationError, match="under subject 'tweets-value' failed: .*terminating connection"):
        register(registry["client"], "tweets-value", SCHEMA)
    assert registry["requests"] == 3


def test_a_registry_not_listening_fails_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(avro, "REGISTER_ATTEMPTS", 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SchemaRegistryClient({"url": f"http://127.0.0.1:{port}", "timeout": 5, "max.retries": 0})
    with pytest.raises(SchemaRegistrationError, match="the schema registry cannot be reached"):
        register(client, "tweets-value", SCHEMA)


def test_an_incompatible_schema_is_refused_at_once(registry):
    registry["register_status"] = 409
    with pytest.raises(SchemaRegistrationError, match="incompatible"):
        register(registry["client"], "tweets-value", SCHEMA)
    assert registry["requests"] == 4  # compatibility, set it, register (409), compatibility for the message: no retry
