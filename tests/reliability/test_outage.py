"""PostgreSQL away for a minute while posts flow: the JDBC sink retries and
catches up, the counts come out exact, and the outage puts nothing in the
dead-letter topic. Meanwhile the API answers 503 (retry later), never 500."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack import stackctl
from stack.common import API_URL

from .conftest import dead_letters, serving_db, wait_caught_up

OUTAGE_S = 60
PER_SECOND = 20


def test_postgres_down_for_a_minute(quiet_pipeline):
    run = uuid.uuid4().hex[:8]
    tag = f"outage{run}"
    dlq_before = dead_letters()
    writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    sent = 0
    stop = threading.Event()

    def feed():  # posts keep coming during the whole outage
        nonlocal sent
        while not stop.is_set():
            for _ in range(PER_SECOND):
                writer.send(Post(f"outage-{run}-{sent}", f"#{tag} panne numéro {sent}", 1_700_000_000_000 + sent))
                sent += 1
            writer.flush()
            time.sleep(1)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        time.sleep(3)
        # stopped on purpose (no pid file left): the supervisor leaves it down
        assert stackctl.stop_service("postgres")
        down_at = time.monotonic()
        answers = []
        while time.monotonic() - down_at < OUTAGE_S:
            assert stackctl.running_pid("postgres") is None, "PostgreSQL was started again during the outage"
            answers.append(httpx.get(f"{API_URL}/api/hashtags", params={"limit": 5}, timeout=15))
            time.sleep(5)
        stackctl.start_service("postgres")
    finally:
        stop.set()
        feeder.join()
    assert writer.flush() == 0 and writer.stats.failed == 0

    wait_caught_up()
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (tag,)).fetchone() == (sent,)
    assert dead_letters() == dlq_before, "the outage put records into the dead-letter topic"
    # the API said "unavailable, retry" during the outage (the first answers may still come from its cache)
    assert {r.status_code for r in answers} <= {200, 503} and answers[-1].status_code == 503
    assert answers[-1].json() == {"detail": "the database is unavailable; try again in a few seconds"}
    assert httpx.get(f"{API_URL}/api/hashtags", params={"limit": 5}, timeout=15).status_code == 200
