"""Replay and synthetic through the real producer CLI into the real broker and registry:
a Confluent-format Avro consumer reads back exactly what was meant to be written."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.synthetic import synthetic_posts

from .conftest import consume, producer_env, report, run_cli

SCHEMA = ProducerSettings().schema_file.read_text()


def check_round_trip(topic: str, registry, expected: list[Post]) -> None:
    records = consume(topic, registry, len(expected))
    by_id = {p.id: p for p in expected}
    assert len(records) == len(expected) == len(by_id)
    schema_id = registry.get_latest_version(f"{topic}-value").schema_id
    reference = AvroSerializer(
        registry,
        SCHEMA,
        conf={"auto.register.schemas": False, "use.latest.version": True, "subject.name.strategy.type": "TOPIC"},
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    for key, value, raw in records:
        assert value == by_id[key].to_record()  # read back identically, key = post id
        assert raw[0] == 0 and int.from_bytes(raw[1:5], "big") == schema_id  # Confluent wire format
        assert raw == reference(value, ctx)  # the bytes confluent-kafka's own serializer writes
    assert {key for key, _, _ in records} == set(by_id)


def test_replay_round_trip(topic, registry, tmp_path):
    decomposed = unicodedata.normalize("NFD", "Santé publique : vaccinés à 80 % #Santé")
    lines = [
        json.dumps(
            {
                "id": str(1366000000000000000 + i),
                "text": f"post {i} #covid",
                "author_id": str(i),
                "created_at": f"2021-03-01T10:{i % 60:02d}:00.000Z",
                "lang": "fr" if i % 2 else "en",
            }
        )
        for i in range(200)
    ]
    lines += [
        json.dumps({"id": "nfd", "text": decomposed + "\u0000", "created_at": "2021-03-01T11:00:00+01:00"}),
        json.dumps(
            {"id": 42, "text": "numeric id, emoji 🎉, no author", "lang": None, "created_at": "2021-03-01T10:00:00Z"},
            ensure_ascii=False,
        ),
        '{"id": "broken", "text": ',
        json.dumps({"text": "no id"}),
    ]
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = run_cli(["replay", str(path)], producer_env(topic, tmp_path))
    assert out.returncode == 0, out.stderr
    text = report(out)
    assert f"sent 202 posts to '{topic}'" in text and "rejected 2 lines" in text
    rejects_file = Path(re.search(r"rejected lines kept in (\S+)", text).group(1))
    assert rejects_file.parent == tmp_path / "rejects"
    assert [(r["line"], r["source"], r["reason"].split(":")[0]) for r in map(json.loads, rejects_file.open())] == [
        (203, str(path), "invalid JSON"),
        (204, str(path), "missing field"),
    ]

    expected = [
        Post(
            str(1366000000000000000 + i),
            f"post {i} #covid",
            1614592800000 + (i % 60) * 60_000,
            str(i),
            "fr" if i % 2 else "en",
            "replay",
        )
        for i in range(200)
    ]
    expected += [
        Post("nfd", unicodedata.normalize("NFC", decomposed), 1614592800000, None, None, "replay"),
        Post("42", "numeric id, emoji 🎉, no author", 1614592800000, None, None, "replay"),
    ]
    check_round_trip(topic, registry, expected)


def test_synthetic_round_trip(topic, registry, tmp_path):
    out = run_cli(["synthetic", "--count", "3000", "--seed", "11"], producer_env(topic, tmp_path))
    assert out.returncode == 0, out.stderr
    assert f"sent 3000 posts to '{topic}'" in report(out)
    check_round_trip(topic, registry, list(synthetic_posts(3000, seed=11)))
