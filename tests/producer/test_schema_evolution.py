"""The evolution policy at the registry: BACKWARD compatible changes go through,
an incompatible one is refused (409) and the producer says so clearly."""

from __future__ import annotations

import json

import pytest

from producer.avro import SchemaRegistrationError
from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter

from .conftest import BOOTSTRAP, REGISTRY, consume, producer_env, report, run_cli

SCHEMA = json.loads(ProducerSettings().schema_file.read_text())


def settings(topic: str, schema_file) -> ProducerSettings:
    return ProducerSettings(
        topic=topic, schema_file=schema_file, bootstrap_servers=BOOTSTRAP, registry_url=REGISTRY, metrics_port=-1
    )


def schema_file(tmp_path, name: str, schema: dict):
    path = tmp_path / f"{name}.avsc"
    path.write_text(json.dumps(schema))
    return path


def test_incompatible_change_is_refused_with_a_clear_error(topic, registry, tmp_path):
    subject = f"{topic}-value"
    PostWriter(settings(topic, ProducerSettings().schema_file))
    assert registry.get_compatibility(subject) == "BACKWARD"  # the policy is set on the subject

    retyped = json.loads(json.dumps(SCHEMA))
    next(f for f in retyped["fields"] if f["name"] == "created_at")["type"] = "string"
    bad = schema_file(tmp_path, "retyped", retyped)
    with pytest.raises(SchemaRegistrationError) as e:
        PostWriter(settings(topic, bad))
    message = str(e.value)
    assert f"subject '{subject}'" in message and "incompatible" in message and "BACKWARD" in message
    assert str(bad) in message

    # the CLI: exit 2, the same message, nothing sent
    out = run_cli(["synthetic", "--count", "3"], producer_env(topic, tmp_path, PRODUCER_SCHEMA_FILE=str(bad)))
    assert out.returncode == 2
    text = report(out)
    assert "schema registration failed" in text and f"subject '{subject}'" in text and "incompatible" in text
    assert "sent" not in text


def test_a_new_field_without_default_is_refused_too(topic, registry, tmp_path):
    PostWriter(settings(topic, ProducerSettings().schema_file))
    widened = json.loads(json.dumps(SCHEMA))
    widened["fields"].append({"name": "reply_count", "type": "long"})  # new field, no default: old data unreadable
    with pytest.raises(SchemaRegistrationError, match="incompatible"):
        PostWriter(settings(topic, schema_file(tmp_path, "nodefault", widened)))


def test_a_backward_compatible_change_is_accepted(topic, registry, tmp_path):
    first = PostWriter(settings(topic, ProducerSettings().schema_file))
    evolved = json.loads(json.dumps(SCHEMA))
    evolved["fields"].append({"name": "reply_count", "type": "long", "default": 0, "doc": "added later"})
    writer = PostWriter(settings(topic, schema_file(tmp_path, "evolved", evolved)))
    assert writer.schema_id != first.schema_id
    assert len(registry.get_versions(f"{topic}-value")) == 2
    writer.send(Post("1", "t", 5, None, "fr", "replay"))
    assert writer.flush(10) == 0 and writer.stats.failed == 0
    [(key, value, _)] = consume(topic, registry, 1)
    assert key == "1" and value["reply_count"] == 0 and value["text"] == "t"
