"""Records the sink cannot read, written straight to a count topic, go to the
dead-letter topic dlq_sink with the reason, and the sink goes on. (The other
side of RetryingAvroConverter: a registry that is away makes the sink wait, but
a record that is really bad must not stall it.)"""

from __future__ import annotations

import struct
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack.common import KAFKA

from .conftest import dead_letters, serving_db, wait_caught_up

TOPIC = "post_stats"


def newest_record(topic: str):
    """The last committed record of a count topic (its key is a valid Avro key)."""
    c = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"dlq-test-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, max(low, high - 50))])
        last = None
        while (msg := c.poll(5)) is not None:
            if not msg.error() and msg.value() is not None:
                last = msg
        assert last is not None, f"{topic} has no record yet"
        return last
    finally:
        c.close()


def dead_letter_reasons(start: int) -> list[tuple[str, str]]:
    c = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"dlq-test-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}
    )
    try:
        _, high = c.get_watermark_offsets(TopicPartition("dlq_sink", 0), timeout=10)
        c.assign([TopicPartition("dlq_sink", 0, start)])
        found = []
        while len(found) < high - start and (msg := c.poll(10)) is not None:
            headers = {k: (v or b"").decode() for k, v in msg.headers() or []}
            found.append((headers["__connect.errors.topic"], headers["__connect.errors.exception.message"]))
        return found
    finally:
        c.close()


def test_unreadable_count_records_go_to_the_dead_letter_topic(quiet_pipeline):
    good = newest_record(TOPIC)
    with serving_db() as db:
        stats_before = db.execute("SELECT stat, posts FROM post_stats ORDER BY stat").fetchall()
    dlq_start = dead_letters()
    unknown_id = b"\x00" + struct.pack(">I", 987_654_321) + good.value()[5:]
    wrong_magic = b"\x07" + good.value()[1:]
    raw = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True})
    for value in (unknown_id, wrong_magic):
        raw.produce(TOPIC, key=good.key(), value=value, partition=good.partition())
    assert raw.flush(30) == 0

    # the sink goes on: a post sent afterwards is counted
    run = uuid.uuid4().hex[:8]
    writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    writer.send(Post(f"dlq-{run}", f"#dlq{run} après les mauvais", 1_700_000_000_000))
    assert writer.flush() == 0
    wait_caught_up(timeout=180)

    assert dead_letters() == dlq_start + 2
    reasons = dead_letter_reasons(dlq_start)
    assert [topic for topic, _ in reasons] == [TOPIC, TOPIC]
    assert "No content with ID '987654321'" in reasons[0][1], reasons[0]
    # Apicurio 2.6's converter does not check the magic byte; it fails on the id it then reads
    assert reasons[1][1] == "artifact reference cannot be null", reasons[1]
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (f"dlq{run}",)).fetchone() == (1,)
        stats = dict(db.execute("SELECT stat, posts FROM post_stats").fetchall())
    assert stats["all"] == dict(stats_before)["all"] + 1  # the bad records changed nothing
