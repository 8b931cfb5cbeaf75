"""Rolling out a pipeline change while posts flow loses and doubles nothing.

v1 runs on the test's own topics; posts stream in; v2 (v1 plus the stopword
'vaccin') is rolled out with `pipeline.apply`, which stops v1 with a savepoint
and starts v2 from it. Afterwards every hashtag count, and every word count
but the new stopword's, equals the reference count over all posts."""

from __future__ import annotations

import threading
import time
import uuid

import reference
from producer.config import ProducerSettings
from producer.sources.synthetic import synthetic_posts
from producer.writer import PostWriter
from stack import pipeline
from tests.conftest import wait_checkpoints
from tests.golden.test_golden import as_golden
from tests.kafka_tables import create_topics, delete_topics, read_table

NEW_STOPWORD = "vaccin"


def stream(posts, topic: str, per_second: int, done: threading.Event) -> None:
    writer = PostWriter(ProducerSettings(topic=topic))
    for i, post in enumerate(posts):
        writer.send(post)
        if i % per_second == per_second - 1:
            writer.flush()
            time.sleep(1)
    assert writer.flush() == 0 and writer.stats.failed == 0
    done.set()


def test_a_new_stopword_rolls_out_without_losing_or_doubling_counts(stack, tmp_path):
    v1 = pipeline.latest()
    v2_path = tmp_path / "v2_counts.sql"
    # the stopword list is one literal the tokenizer reads: a stateless change
    v2_path.write_text(
        v1.path.read_text().replace("'${STOPWORDS}'", f"'${{STOPWORDS}} {NEW_STOPWORD}'"), encoding="utf-8"
    )
    assert v2_path.read_text() != v1.path.read_text()
    v2 = pipeline.Script(v1.version + 1, v2_path)

    prefix = f"change_{uuid.uuid4().hex[:8]}_"
    target = pipeline.Target(prefix)
    outputs = ["hashtag_counts", "unigram_tops", "hashtag_minute_counts"]
    topics = [prefix + "tweets"] + [prefix + n for n in pipeline.SERVING_TABLES]
    create_topics(topics)
    posts = list(synthetic_posts(6000, seed=7))
    posts += posts[:200]  # re-sent copies: must not count twice
    done = threading.Event()
    try:
        v1_job = pipeline.start(v1, None, target)
        feeder = threading.Thread(target=stream, args=(posts, prefix + "tweets", 150, done))
        feeder.start()
        wait_checkpoints(v1_job, more=1)  # v1 has counted posts and committed them
        pipeline.apply(v2, target=target)
        assert "resumed from savepoint" in pipeline.status(target)["started"]
        feeder.join(timeout=120)
        assert done.is_set()

        records = [{"id": p.id, "text": p.text, "created_at": p.created_at} for p in posts]
        want_tags = dict(reference.count_hashtags(records))
        want_words = dict(reference.count_words(records))
        want_minutes = sorted(
            [m, t, n] for (m, t), n in reference.count_per_minute(records, reference.hashtags).items()
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = {n: as_golden(n, read_table(prefix + n)) for n in outputs}
            words_now = {w: c for w, c in got["unigram_tops"].items() if w != NEW_STOPWORD}
            if got["hashtag_counts"] == want_tags and words_now == {
                w: c for w, c in want_words.items() if w != NEW_STOPWORD
            }:
                break
            time.sleep(2)
        wait_checkpoints(pipeline.live_job(target.job_prefix)["jid"])  # nothing may change any more
        got = {n: as_golden(n, read_table(prefix + n)) for n in outputs}
        assert got["hashtag_counts"] == want_tags
        assert got["hashtag_minute_counts"] == want_minutes
        assert {w: c for w, c in got["unigram_tops"].items() if w != NEW_STOPWORD} == {
            w: c for w, c in want_words.items() if w != NEW_STOPWORD
        }
        # counted by v1 until the switch, then no more
        assert 0 < got["unigram_tops"][NEW_STOPWORD] < want_words[NEW_STOPWORD]
    finally:
        job = pipeline.live_job(target.job_prefix)
        if job:
            pipeline.cancel(job["jid"])
        delete_topics(topics)
        for f in (target.live_file, target.savepoint_file):
            f.unlink(missing_ok=True)
