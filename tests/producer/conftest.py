"""Tests of the producer against the real broker and registry.

They need the local stack: the session starts it when it is not healthy (the
`stack` fixture of tests/conftest.py), and fails with a clear message when Kafka or the registry cannot
be reached. Each test writes to its own topic `producer_test_<name>_<random>` and
registry subject, both deleted afterwards; nothing here writes to `tweets`.
Set PRODUCER_TEST_STACK=external to skip starting the stack (it must be up).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, DeserializingConsumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

from tests.conftest import REPO

BOOTSTRAP = "127.0.0.1:9092"
REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"

if os.environ.get("PRODUCER_TEST_STACK") == "external":

    @pytest.fixture(scope="session")
    def stack():
        """Overrides tests/conftest.py's `stack` (which starts the stack when it is not healthy)."""
        yield


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker(stack) -> AdminClient:
    if not _reachable("127.0.0.1", 9092):
        pytest.fail(
            f"Kafka is not reachable at {BOOTSTRAP}: start the stack (`make up`) before these tests", pytrace=False
        )
    try:
        httpx.get(f"{REGISTRY}/subjects", timeout=5).raise_for_status()
    except httpx.HTTPError as e:
        pytest.fail(
            f"the schema registry is not reachable at {REGISTRY} ({e}): start the stack (`make up`)", pytrace=False
        )
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


@pytest.fixture(scope="session")
def registry(broker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": REGISTRY, "timeout": 10})


@pytest.fixture
def topic(broker, registry, request):
    """A new topic with 2 partitions (like `tweets`), deleted after the test with its subject."""
    name = f"producer_test_{request.node.name[:40].strip('_')}_{uuid.uuid4().hex[:8]}"
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    broker.create_topics([NewTopic(name, 2, 1)])[name].result(15)
    yield name
    broker.delete_topics([name])[name].result(15)
    delete_subject(registry, f"{name}-value")


def delete_subject(registry: SchemaRegistryClient, subject: str) -> None:
    for permanent in (False, True):
        try:
            registry.delete_subject(subject, permanent=permanent)
        except Exception:  # noqa: BLE001 - absent already
            pass


def producer_env(topic: str, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODUCER_") and k != "X_BEARER_TOKEN"}
    env.update(
        PRODUCER_TOPIC=topic,
        PRODUCER_REJECTS_DIR=str(tmp_path / "rejects"),
        PRODUCER_METRICS_PORT="-1",
        PRODUCER_BOOTSTRAP_SERVERS=BOOTSTRAP,
        PRODUCER_REGISTRY_URL=REGISTRY,
    )
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report(out: subprocess.CompletedProcess) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(out.stderr.split())


def consume(topic: str, registry: SchemaRegistryClient, expected: int, timeout: float = 30) -> list[tuple]:
    """(key, value dict, raw value bytes) of every record of the topic, in (partition, offset) order: values read
    with confluent-kafka's AvroDeserializer, raw bytes with a plain consumer. Fails if there are more or fewer."""
    common = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"producer-test-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    }
    raw = Consumer(common)
    typed = DeserializingConsumer(
        {
            **common,
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(registry, conf={"subject.name.strategy.type": "TOPIC"}),
        }
    )
    partitions = raw.list_topics(topic, timeout=10).topics[topic].partitions
    out: dict[tuple, list] = {}
    try:
        for consumer, slot in ((raw, 0), (typed, 1)):
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            deadline = time.monotonic() + timeout
            got = 0
            while got < expected and time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                entry = out.setdefault((msg.partition(), msg.offset()), [None, None, None])
                if slot == 0:
                    entry[2] = msg.value()
                else:
                    entry[0], entry[1] = msg.key(), msg.value()
                got += 1
            assert got >= expected, f"read {got} of {expected} records from {topic}"
            assert consumer.poll(0.5) is None, f"more than {expected} records in {topic}"
    finally:
        raw.close()
        typed.close()
    return [tuple(v) for _, v in sorted(out.items(), key=lambda kv: kv[0])]
