"""Outages put nothing in the dead-letter topic and lose nothing.

PostgreSQL away for a minute while posts flow: the JDBC sink retries and
catches up, the counts come out exact. Meanwhile the API answers 503 (retry
later), never 500. The schema registry unable to answer while the sink meets
schema ids it has not cached: the sink waits instead of setting records aside."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack import services
from stack.common import API_URL, CONNECT_URL, REGISTRY_URL
from stack.processes import running_pid
from stack.sink import connector_status, sink_lag

from .conftest import dead_letters, serving_db, source_lag, wait_caught_up

OUTAGE_S = 60
PER_SECOND = 20
POSTS_WAITING = 300


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
        assert services.stop_service("postgres")
        down_at = time.monotonic()
        answers = []
        while time.monotonic() - down_at < OUTAGE_S:
            assert running_pid("postgres") is None, "PostgreSQL was started again during the outage"
            answers.append(httpx.get(f"{API_URL}/api/hashtags", params={"limit": 5}, timeout=15))
            time.sleep(5)
        # count updates the sink could not write wait in Kafka: the sink met the outage
        waiting_at_end = sink_lag()
        services.start_service("postgres")
        # the registry's pooled connections died with PostgreSQL: it checks each one
        # it borrows, so it answers at once (it used to answer 500 once per connection)
        registry_answers = [
            httpx.get(f"{REGISTRY_URL}/apis/ccompat/v7/subjects/tweets-value/versions/latest", timeout=15).status_code
            for _ in range(25)
        ]
    finally:
        stop.set()
        feeder.join()
    assert registry_answers == [200] * 25
    assert writer.flush() == 0 and writer.stats.failed == 0
    assert waiting_at_end > 0, "no count update waited for PostgreSQL: the sink never met the outage"

    wait_caught_up()
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (tag,)).fetchone() == (sent,)
    assert dead_letters() == dlq_before, "the outage put records into the dead-letter topic"
    # the API said "unavailable, retry" during the outage (the first answers may still come from its cache)
    assert {r.status_code for r in answers} <= {200, 503} and answers[-1].status_code == 503
    assert answers[-1].json() == {"detail": "the database is unavailable; try again in a few seconds"}
    assert httpx.get(f"{API_URL}/api/hashtags", params={"limit": 5}, timeout=15).status_code == 200


@pytest.mark.parametrize("away", ["registry", "postgres"])
def test_sink_meets_new_schemas_while_the_registry_cannot_answer(quiet_pipeline, away):
    """The sink restarts (its schema cache empty), then count updates wait in Kafka
    while the registry is stopped, or while its database is (the registry then
    answers 500). The sink must wait for the registry, not send the updates to
    the dead-letter topic as bad records: Apicurio's own cache retries only
    rate-limited look-ups, so our converter marks these failures retriable."""
    run = uuid.uuid4().hex[:8]
    tag = f"registry{run}"
    connector = f"{CONNECT_URL}/connectors/serving-tables-sink"
    dlq_before = dead_letters()
    assert httpx.post(f"{connector}/tasks/0/restart", timeout=30).status_code in (
        200,
        204,
    )  # new converters, empty cache
    wait_task_running(connector)
    httpx.put(f"{connector}/pause", timeout=30).raise_for_status()
    try:
        writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
        for i in range(POSTS_WAITING):
            writer.send(Post(f"schema-{run}-{i}", f"#{tag} cache vide {i}", 1_700_000_000_000 + i))
        assert writer.flush() == 0 and writer.stats.failed == 0
        wait_until(lambda: source_lag() == 0 and sink_lag() > 0, "Flink to commit the new counts")
        assert services.stop_service(away)
        httpx.put(f"{connector}/resume", timeout=30).raise_for_status()
        time.sleep(OUTAGE_S / 3)  # the sink meets the unknown schema ids meanwhile
        still = dead_letters()
        waiting = sink_lag()  # the updates it could not decode wait in Kafka
        task = connector_status("serving-tables-sink", timeout=30)["tasks"][0]
    finally:
        httpx.put(f"{connector}/resume", timeout=30)
        if running_pid(away) is None:
            services.start_service(away)
    assert still == dlq_before, f"the {away} outage sent good records to the dead-letter topic"
    assert waiting > 0, f"the sink wrote every update while the {away} was away: it never met the outage"
    assert task["state"] == "RUNNING", task

    wait_caught_up()
    with serving_db() as db:
        assert db.execute("SELECT count FROM hashtag_counts WHERE hashtag = %s", (tag,)).fetchone() == (POSTS_WAITING,)
    assert dead_letters() == dlq_before


def wait_task_running(connector_url: str, timeout: float = 60) -> None:
    name = connector_url.rsplit("/", 1)[1]
    wait_until(
        lambda: connector_status(name)["tasks"][0]["state"] == "RUNNING",
        "the sink task to run",
        timeout,
    )


def wait_until(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
