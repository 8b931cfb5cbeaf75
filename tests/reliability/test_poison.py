"""Poison records written straight to the topic tweets: the job keeps counting the
good posts around them, and each bad record is counted, set aside in
rejected_posts (PostgreSQL and topic) and shown by /api/stats and /api/rejects."""

from __future__ import annotations

import struct
import uuid

import httpx
from confluent_kafka import Producer

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack import pipeline
from stack.common import API_URL, KAFKA

from .conftest import serving_db, wait_caught_up

GOOD = 40


def stat(db, name: str) -> int:
    row = db.execute("SELECT posts FROM post_stats WHERE stat = %s", (name,)).fetchone()
    return row[0] if row else 0


def test_bad_records_are_set_aside_and_good_ones_counted(quiet_pipeline):
    run = uuid.uuid4().hex[:8]
    tag = f"poisontest{run}"
    job_before = pipeline.live_job()["jid"]
    with serving_db() as db:
        rejected_before, posts_before = stat(db, "rejected"), stat(db, "all")

    writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    good = [Post(f"poison-{run}-{i}", f"#{tag} bonjour numéro {i}", 1_700_000_000_000 + i) for i in range(GOOD)]
    valid = writer._encode(good[0]._replace(id=f"poison-{run}-big", text="a" * 1_048_576))
    struct.unpack(">I", valid[1:5])[0]
    bad = {  # value -> the start of the reason the pipeline must give
        b"\x01" + valid[1:200]: "IOException: Unknown data format. Magic number does not match",
        b"\x00"
        + struct.pack(">I", 987_654_321)
        + valid[5:200]: "IOException: Could not find schema with id 987654321 in registry",
        writer._encode(good[1]._replace(id=f"poison-{run}-cut"))[:12]: "EOFException",  # truncated Avro
        valid: "text longer than 25000 characters (1048576)",
        None: "empty record (null value)",
    }
    raw = Producer({"bootstrap.servers": KAFKA, "message.max.bytes": 4_000_000, "enable.idempotence": True})
    offsets: dict[bytes | None, tuple[int, int]] = {}

    def remember(value):
        return lambda err, msg: offsets.__setitem__(value, (msg.partition(), msg.offset())) if err is None else None

    for i, post in enumerate(good):  # the bad records land between good posts, in both partitions
        writer.send(post)
        if i % 8 == 7 and bad.keys() - offsets.keys():
            writer.flush()
            value = next(v for v in bad if v not in offsets)
            raw.produce("tweets", value=value, partition=(i // 8) % 2, on_delivery=remember(value))
            raw.flush(30)
    assert writer.flush() == 0 and writer.stats.failed == 0
    assert raw.flush(30) == 0 and len(offsets) == len(bad), "the broker refused a poison record"

    wait_caught_up()
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (tag,)).fetchone() == (GOOD,)
        assert stat(db, "all") == posts_before + GOOD
        rejected_now = stat(db, "rejected")
        assert rejected_now == rejected_before + len(bad)
        for value, reason in bad.items():
            row = db.execute(
                "SELECT reason, post_id, raw_value FROM rejected_posts"
                " WHERE tweets_partition = %s AND tweets_offset = %s",
                offsets[value],
            ).fetchone()
            assert row is not None, f"not set aside: {reason or 'truncated Avro'}"
            assert row[0].startswith(reason) and row[0], row[0]
            if reason.startswith("text longer"):
                assert row[1] == f"poison-{run}-big" and row[2] is None  # decoded: the record stays in tweets
            elif value is not None:
                assert bytes(row[2]) == value, "the copy set aside differs from the record"
    assert pipeline.live_job()["jid"] == job_before, "the job restarted"

    stats = httpx.get(f"{API_URL}/api/stats", timeout=10).json()
    assert stats["rejected"]["pipeline"] == rejected_now
    listed = {
        (r["tweets_partition"], r["tweets_offset"])
        for r in httpx.get(f"{API_URL}/api/rejects", params={"limit": 1000}, timeout=10).json()
    }
    assert set(offsets.values()) <= listed
