"""No silent stalls: a registry request that is never answered stops counting;
`stackctl status`, /api/stats, /healthz/pipeline and the open page say which
stage stalled within the set time, the stack brings it back, and every count is
exact. A sink blocked by the database says so too.

The live pipeline is rolled out (from a savepoint) with its registry URL
pointing at a proxy (tests/registry_proxy.py) that holds the chosen request,
and rolled back at the end."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

import reference
from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack import pipeline
from stack.common import API_URL, REGISTRY_URL
from tests.conftest import REPO, STACKCTL, secret
from tests.registry_proxy import RegistryProxy

from .conftest import assert_counted, expected_delta, snapshot, wait_caught_up

POSTS = 400
HEAL_S = 60  # after the stall is reported, counting must be back within this
MONITOR_S = 5  # the API judges progress this often (progress_check_seconds)


def healthy_again() -> bool:
    """/healthz/pipeline answers 200 within two of the API's progress checks."""
    deadline = time.monotonic() + 2 * MONITOR_S + 5
    while True:
        if httpx.get(f"{API_URL}/healthz/pipeline", timeout=15).status_code == 200:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


@pytest.fixture
def proxied_pipeline(quiet_pipeline):
    """The live pipeline, asking the registry through a proxy."""
    proxy = RegistryProxy(REGISTRY_URL)
    try:
        pipeline.apply(target=pipeline.Target(registry=proxy.url))
        yield proxy
    finally:
        proxy.release()
        wait_caught_up()  # (the proxy answers again: a job Flink is restarting gets going)
        # back to the registry itself (nothing to do if the supervisor's heal did it)
        pipeline.apply(target=pipeline.Target())
        proxy.close()


def stall_after() -> float:
    return httpx.get(f"{API_URL}/api/stats", timeout=15).json()["pipeline"]["stall_after_seconds"]


def write_posts(run: str) -> list[dict]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    posts = [
        Post(f"stall-{run}-{i}", f"#stall{run} #bloqué{i % 7} attente numéro {i}", now + i * 10) for i in range(POSTS)
    ]
    writer = PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    for p in posts:
        writer.send(p)
    assert writer.flush() == 0 and writer.stats.failed == 0
    return [p._asdict() for p in posts]


def wait_reported(stage: str, timeout: float) -> dict:
    """Until /api/stats names `stage` as stalled; returns the stats."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = httpx.get(f"{API_URL}/api/stats", timeout=15).json()
        if any(line.startswith(f"{stage} stalled") for line in stats["pipeline"]["stalled"]):
            return stats
        time.sleep(1)
    raise AssertionError(f"/api/stats did not report {stage!r} stalled within {timeout:.0f}s: {stats['pipeline']}")


def assert_status_says_stalled(stage: str) -> None:
    """`stackctl status` shows the supervisor's verdicts, taken every second: it may
    be a few seconds behind the API's. A stage has a line per connector (or
    job): one of them says stalled."""
    for _ in range(10):
        status = subprocess.run(
            [*STACKCTL, "status"], cwd=REPO, capture_output=True, text=True, env=os.environ | {"COLUMNS": "250"}
        )
        output = status.stdout + status.stderr
        if any(line.startswith(stage) and "stalled" in line for line in output.splitlines()):
            assert status.returncode == 1, output
            return
        time.sleep(1)
    raise AssertionError(f"`stackctl status` does not say {stage!r} stalled:\n{output}")


@pytest.mark.parametrize(
    "request_held",
    [
        # A sink's first write: Flink registers the schema of hashtag_counts' values.
        # Unanswered until a little after the stall limit: the registry client's read
        # time-out fails the job, Flink restarts it and asks again, until it is answered.
        ("POST", r"/subjects/hashtag_counts-value/versions", "silent"),
        # The source meets a schema id it has not looked up yet (a new job's cache is empty).
        ("GET", r"/schemas/ids/\d+", "silent"),
        # An answer that never ends, for longer than the test: no read time-out catches
        # it, the job stays RUNNING and blocked; only the supervisor brings it back.
        ("POST", r"/subjects/hashtag_counts-value/versions", "trickle"),
    ],
    ids=["sink-registration", "source-lookup", "sink-registration-trickle"],
)
def test_unanswered_registry_request_is_reported_and_healed(proxied_pipeline, request_held, page):
    proxy, (method, path, mode) = proxied_pipeline, request_held
    limit = stall_after()
    page.goto(f"{API_URL}/")  # the page stays open: it must turn to "stalled" by itself
    expect(page.locator("#stat-pipeline")).to_contain_text("running", timeout=15_000)
    before = snapshot()
    proxy.hold(method, path, seconds=limit + 10 if mode == "silent" else limit + 3 * HEAL_S, mode=mode)
    posts = write_posts(uuid.uuid4().hex[:8])
    written = time.monotonic()

    stats = wait_reported("flink job", timeout=limit + 20)
    reported = time.monotonic()
    assert proxy.held, "the proxy held no request: the test did not test anything"
    assert stats["pipeline"]["healthy"] is False
    health = httpx.get(f"{API_URL}/healthz/pipeline", timeout=15)
    assert health.status_code == 503 and health.json()["status"] == "stalled", health.text
    assert_status_says_stalled("flink job")
    expect(page.locator("#stat-pipeline")).to_contain_text("flink job stalled", timeout=10_000)
    expect(page.locator("#pipeline-dot")).to_have_class("dot stale")

    wait_caught_up(timeout=HEAL_S + 30)
    healed = time.monotonic()
    print(
        f"{method} {path} {mode}: reported {reported - written:.0f}s after the posts were written, "
        f"counted {healed - reported:.0f}s after the report",
        flush=True,
    )
    assert healed - reported <= HEAL_S + 10  # (wait_caught_up wants two calm reads)
    assert_counted(expected_delta(posts), before, reference.minute(posts[0]["created_at"]))
    assert healthy_again(), "/healthz/pipeline still answers 503 after counting resumed"
    expect(page.locator("#stat-pipeline")).to_contain_text("running", timeout=10_000)
    expect(page.locator("#pipeline-dot")).to_have_class("dot ok")


def test_sink_blocked_by_the_database_is_reported(quiet_pipeline):
    """A lock on a count table (a long migration, say) blocks the sink's writes:
    its task stays RUNNING and writes nothing. Reported as the sink's stall; once
    the lock is gone the sink goes on, counts exact."""
    limit = stall_after()
    before = snapshot()
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with psycopg.connect(
            host="127.0.0.1", port=5432, dbname="tweetstream", user="pipeline", password=secret("pipeline_db_password")
        ) as conn:
            conn.execute("LOCK TABLE hashtag_counts IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(limit + 60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(15)
        posts = write_posts(uuid.uuid4().hex[:8])
        stats = wait_reported("sink", timeout=limit + 30)
        line = next(line for line in stats["pipeline"]["stalled"] if line.startswith("sink stalled"))
        assert "count updates for PostgreSQL wait" in line, line
        assert_status_says_stalled("sink")
    finally:
        release.set()
        holder.join()
    wait_caught_up(timeout=HEAL_S + 30)
    assert_counted(expected_delta(posts), before, reference.minute(posts[0]["created_at"]))
