"""Each pipeline script on the real Flink, fed a small input, must produce
exactly its golden outputs (tests/golden/<script>.expected.json, made by the
reference implementation in reference/__init__.py and reviewed)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from producer.config import ProducerSettings
from producer.post import post_from_json_line
from producer.writer import PostWriter
from stack import pipeline
from tests.conftest import wait_checkpoints
from tests.kafka_tables import create_topics, delete_topics, read_table

HERE = Path(__file__).resolve().parent
OUTPUTS = pipeline.COUNT_TABLES


def as_golden(name: str, table: dict[tuple, dict]):
    """An output table in the golden file's shape."""
    if name == "hashtag_counts":
        return dict(sorted((k[0], v["count"]) for k, v in table.items()))
    if name == "unigram_tops":  # one record: {"word": count, ...}
        return dict(sorted((w, n) for v in table.values() for w, n in json.loads(v["words"]).items()))
    if name.endswith("minute_counts"):
        return sorted([k[0], k[1], v["count"]] for k, v in table.items())
    if name == "unigram_minute_tops":  # one record per minute: {"word": count, ...}
        return sorted([k[0], w, n] for k, v in table.items() for w, n in json.loads(v["words"]).items())
    return {str(k[0]): v for k, v in sorted(table.items())}  # trending (by rank), post_stats


def produce(path: Path, topic: str) -> int:
    """Each line as the Avro record, written as it is (not normalised by the producer, as
    another writer might), with the Kafka timestamp the line gives (record_ms)."""
    writer = PostWriter(ProducerSettings(topic=topic))
    encode, produce_, topic = writer.fast_path()
    for line in path.read_text(encoding="utf-8").splitlines():
        cleaned = post_from_json_line(line)
        raw = json.loads(line)
        produce_(topic, encode(cleaned._replace(text=raw["text"])), cleaned.id.encode(), timestamp=raw["record_ms"])
    assert writer.flush() == 0 and writer.stats.failed == 0
    return writer.stats.delivered


def run_until_golden(prefix: str, expected: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = {name: as_golden(name, read_table(prefix + name)) for name in OUTPUTS}
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(2)


@pytest.mark.parametrize("script", list(pipeline.scripts().values()), ids=lambda s: s.path.name)
def test_script_matches_its_golden_outputs(stack, script):
    golden_in = HERE / f"{script.path.stem}.input.jsonl"
    expected = json.loads((HERE / f"{script.path.stem}.expected.json").read_text(encoding="utf-8"))
    prefix = f"golden_{uuid.uuid4().hex[:8]}_"
    target = pipeline.Target(prefix)
    topics = [prefix + "tweets"] + [prefix + name for name in pipeline.SERVING_TABLES]
    create_topics(topics)
    job_id = None
    try:
        produce(golden_in, prefix + "tweets")
        job_id = pipeline.submit(target.render(script), target.job_name(script))
        got = run_until_golden(prefix, expected)
        for name in OUTPUTS:
            assert got[name] == expected[name], name
        # two more checkpoints: nothing may change any more (no late double counts)
        wait_checkpoints(job_id)
        assert {name: as_golden(name, read_table(prefix + name)) for name in OUTPUTS} == expected
    finally:
        if job_id:
            pipeline.cancel(job_id)
        delete_topics(topics)
