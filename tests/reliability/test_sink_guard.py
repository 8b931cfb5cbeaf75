"""A count row PostgreSQL would refuse (a key longer than a btree index entry
takes), written straight to a count topic by another writer, is set aside in
sink_rejects with its reason, and the sink goes on (Debezium JDBC 3.6 would
otherwise stop its task on the failed write, and retry it forever)."""

from __future__ import annotations

import random
import string
import uuid

import httpx
from confluent_kafka import Producer

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack.common import KAFKA
from stack.sink import connector_status

from .conftest import serving_db, wait_caught_up
from .test_sink_dead_letters import newest_record

API = "http://127.0.0.1:8000"


def avro_string(s: str) -> bytes:
    """Avro's binary encoding of a string: zig-zag varint length, then UTF-8."""
    data = s.encode()
    n, out = len(data) << 1, bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


def send(post_id: str, text: str) -> None:
    writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    writer.send(Post(post_id, text, 1_700_000_000_000))
    assert writer.flush() == 0
    wait_caught_up(timeout=180)


def test_a_key_postgresql_refuses_is_set_aside_and_the_sink_goes_on(quiet_pipeline):
    run = uuid.uuid4().hex[:8]
    send(f"guard-before-{run}", f"#guardbefore{run}")  # so that hashtag_counts has a record to copy
    good = newest_record("hashtag_counts")
    long_tag = "".join(random.choices(string.ascii_lowercase, k=6000))
    # the same key schema (its id follows the magic byte), a 6,000-byte hashtag; the value of a real row
    key = good.key()[:5] + avro_string(long_tag)
    raw = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True})
    raw.produce("hashtag_counts", key=key, value=good.value(), partition=good.partition())
    assert raw.flush(30) == 0

    send(f"guard-{run}", f"#guard{run} après la clé trop longue")

    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (f"guard{run}",)).fetchone() == (1,)
        rows = db.execute(
            "SELECT table_name, reason, key_preview, key_bytes FROM sink_rejects ORDER BY id DESC LIMIT 1"
        ).fetchall()
        assert db.execute("SELECT count(*) FROM hashtag_counts WHERE hashtag = %s", (long_tag,)).fetchone() == (0,)
        # (read once the sink has written past the long key: it holds that row by now)
        (before,) = db.execute("SELECT count(*) FROM sink_rejects").fetchone()
    assert rows == [("hashtag_counts", "key longer than 2000 bytes (6000)", long_tag[:200], 6000)]
    status = connector_status("serving-tables-sink")
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"]
    stats = httpx.get(f"{API}/api/stats", timeout=10)
    assert stats.status_code == 200, stats.text
    assert stats.json()["rejected"]["sink"] >= before >= 1
    listed = httpx.get(f"{API}/api/rejects/sink", params={"limit": 1}, timeout=10).json()
    assert [(r["table"], r["key_bytes"]) for r in listed] == [("hashtag_counts", 6000)]
