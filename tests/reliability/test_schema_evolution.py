"""A backward-compatible new field in the post schema flows through the running
pipeline: posts of both versions are counted, the job never stops. (That an
incompatible schema is refused at the producer: tests/producer/test_schema_evolution.py.)"""

from __future__ import annotations

import json
import uuid

import httpx

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack import pipeline
from stack.common import FLINK_URL

from .conftest import serving_db, wait_caught_up


def failures(job_id: str) -> int:
    exc = httpx.get(f"{FLINK_URL}/jobs/{job_id}/exceptions", timeout=5).json()
    return len(exc.get("exceptionHistory", {}).get("entries", []))


def test_a_new_optional_field_flows_through_without_downtime(quiet_pipeline, tmp_path):
    run = uuid.uuid4().hex[:8]
    tag = f"evolution{run}"
    job = pipeline.live_job()["jid"]
    failures_before = failures(job)

    schema = json.loads(ProducerSettings().schema_file.read_text())
    schema["fields"].append(
        {"name": "reply_count", "type": "long", "default": 0, "doc": "added by the schema-evolution test"}
    )
    evolved_file = tmp_path / "post-v2.avsc"
    evolved_file.write_text(json.dumps(schema))
    old = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    new = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1, schema_file=evolved_file))
    assert new.schema_id != old.schema_id

    for i in range(30):  # the two versions interleaved
        (old if i % 2 else new).send(Post(f"evolution-{run}-{i}", f"#{tag} version {1 + i % 2}", 1_700_000_000_000 + i))
    assert old.flush() == 0 and new.flush() == 0 and old.stats.failed == new.stats.failed == 0

    wait_caught_up()
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (tag,)).fetchone() == (30,)
    assert pipeline.live_job()["jid"] == job and failures(job) == failures_before, "the job stopped or restarted"
