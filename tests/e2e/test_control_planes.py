"""The control planes run no stranger's code and hand out no secret.

- Flink's REST API takes no jar (upload and run are off), its dashboard has no
  cancel button, and it names its own origin for CORS, not `*`; the stack still
  cancels and stops jobs through REST (the golden and reliability suites do).
- Connect lets a connector override only the consumer settings our connectors
  set, and resolves ${env:NAME} only for the variables they name: a connector
  config that asks for another variable gets nothing, even when it sends its
  "password" to a listener of its choosing.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

FLINK = "http://127.0.0.1:8082"
CONNECT = "http://127.0.0.1:8083"
BOOTSTRAP = "127.0.0.1:9092"


def test_flink_refuses_a_jar_upload(stack):
    jar = b"PK\x05\x06" + b"\0" * 18  # an empty zip: what it holds does not matter
    r = httpx.post(
        f"{FLINK}/jars/upload", files={"jarfile": ("job.jar", jar, "application/x-java-archive")}, timeout=10
    )
    # no upload handler: the dashboard's file server answers, and takes no POST
    assert (r.status_code, r.json()) == (400, {"errors": ["POST request not allowed"]})
    assert httpx.post(f"{FLINK}/jars/job.jar/run", timeout=10).status_code == 404
    assert httpx.get(f"{FLINK}/jars", timeout=10).status_code == 404
    features = httpx.get(f"{FLINK}/config", timeout=10).json()["features"]
    assert features["web-submit"] is False and features["web-cancel"] is False


def test_flink_allows_only_its_own_origin(stack):
    r = httpx.get(f"{FLINK}/overview", headers={"Origin": "http://evil.example"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:8082"


def _connector(name: str, **overrides: str) -> dict[str, str]:
    return {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": name,
        "connection.username": "probe",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        **overrides,
    }


@pytest.fixture
def connector_name(stack):
    name = f"probe_{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(15)
    yield name
    httpx.delete(f"{CONNECT}/connectors/{name}", timeout=30)
    admin.delete_topics([name])[name].result(15)


def test_connect_refuses_a_client_override_outside_the_allowlist(connector_name):
    config = _connector(
        connector_name,
        **{"connection.url": "jdbc:postgresql://127.0.0.1:1/x", "consumer.override.bootstrap.servers": "127.0.0.1:1"},
    )
    r = httpx.put(f"{CONNECT}/connectors/{connector_name}/config", json=config, timeout=60)
    assert r.status_code == 400, r.text
    assert "'Allowlist' policy does not allow 'bootstrap.servers' to be overridden" in r.json()["message"]
    assert httpx.get(f"{CONNECT}/connectors/{connector_name}", timeout=10).status_code == 404


class PasswordCatcher:
    """A listener that speaks just enough of PostgreSQL's protocol to ask a
    client for its password in clear text, and keeps what it was sent."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.passwords: list[str | None] = []  # None: asked, the client had none to send
        self.got = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                try:
                    self._one(conn)
                except (OSError, struct.error, UnicodeDecodeError):
                    pass

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        while True:  # SSL / GSS encryption requests first: refused ("N")
            length, code = struct.unpack("!ii", _read(conn, 8))
            _read(conn, length - 8)  # the request's parameters: not needed
            if code in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            break  # the startup message
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        try:
            kind, length = _read(conn, 1), struct.unpack("!i", _read(conn, 4))[0]
            password = _read(conn, length - 4).rstrip(b"\0").decode() if kind == b"p" else None
        except OSError:  # the client hung up: it had no password to send
            password = None
        self.passwords.append(password)
        self.got.set()

    def close(self) -> None:
        self.server.close()


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.mark.parametrize(
    "variable, resolved",
    [
        ("SINK_JDBC_URL", True),  # named by connectors/*.json: resolved (shows the listener catches what is sent)
        ("PATH", False),  # in the worker's environment, not allowed
        ("API_DB_PASSWORD", False),  # another service's secret: neither allowed nor in the worker's environment
    ],
)
def test_connect_resolves_only_the_variables_our_connectors_name(connector_name, variable, resolved):
    catcher = PasswordCatcher()
    try:
        config = _connector(
            connector_name,
            **{
                "connection.url": f"jdbc:postgresql://127.0.0.1:{catcher.port}/x",
                "connection.password": "${env:" + variable + "}",
            },
        )
        r = httpx.put(f"{CONNECT}/connectors/{connector_name}/config", json=config, timeout=60)
        assert r.status_code in (200, 201), r.text
        assert catcher.got.wait(90), "the connector's task never connected"
    finally:
        catcher.close()
    sent = catcher.passwords[0]
    if resolved:
        assert sent.startswith("jdbc:postgresql://") and sent.endswith("/tweetstream")
    else:
        # the worker left the reference unresolved: the connector had no password to send
        assert sent is None, sent
