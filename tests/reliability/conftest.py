"""What the fault tests share: the pipeline's progress, the serving tables as
numbers, and killing a service the way a crash would (kill -9, whole process group)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import httpx
import pytest

import reference
from stack import pipeline, services, sink
from stack.common import KAFKA, _tail
from stack.processes import running_pid
from tests.conftest import reader_connect, source_lag, wait_caught_up  # noqa: F401 - the fault tests import them from here


def serving_db():
    return reader_connect(connect_timeout=3)


def snapshot() -> dict[str, Counter]:
    """The serving tables' counts, keyed like the reference's counters."""
    with serving_db() as db:
        return {
            "hashtags": Counter(dict(db.execute("SELECT hashtag, count FROM hashtag_counts").fetchall())),
            "words": Counter(dict(db.execute("SELECT word, count FROM unigram_counts").fetchall())),
            "hashtag_minutes": Counter(
                {
                    (m, h): c
                    for m, h, c in db.execute("SELECT minute_ms, hashtag, count FROM hashtag_minute_counts").fetchall()
                }
            ),
            "word_minutes": Counter(
                {
                    (m, w): c
                    for m, w, c in db.execute("SELECT minute_ms, word, count FROM unigram_minute_counts").fetchall()
                }
            ),
            "posts": Counter(
                {"all": (db.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone() or [0])[0]}
            ),
        }


def expected_delta(posts: list[dict]) -> dict[str, Counter]:
    return {
        "hashtags": reference.count_hashtags(posts),
        "words": reference.count_words(posts),
        "hashtag_minutes": reference.count_per_minute(posts, reference.hashtags),
        "word_minutes": reference.count_per_minute(posts, reference.words),
        "posts": Counter({"all": len(reference.unique(posts))}),
    }


def difference(after: Counter, before: Counter) -> Counter:
    """after - before, keeping every key that changed (Counter's `-` drops negatives)."""
    return Counter(
        {
            k: after.get(k, 0) - before.get(k, 0)
            for k in after.keys() | before.keys()
            if after.get(k, 0) != before.get(k, 0)
        }
    )


def assert_counted(expected: dict[str, Counter], before: dict[str, Counter], first_minute: int) -> None:
    """What the serving tables gained since `before` is exactly `expected` (the all-time
    words: as far as a top-1,000 table shows, see top_mismatches)."""
    after = snapshot()
    wrong = reference.top_mismatches(before["words"], after["words"], expected["words"])
    assert not wrong, f"words: {len(wrong)} wrong (expected gain, before, after), e.g. {list(wrong.items())[:5]}"
    got = {name: difference(table, before[name]) for name, table in after.items() if name != "words"}
    # older minutes may be pruned meanwhile (retention counts back from the newest post): not ours
    for name in ("hashtag_minutes", "word_minutes"):
        got[name] = Counter({k: v for k, v in got[name].items() if k[0] >= first_minute})
    for name in got:
        missing = {k: (v, got[name].get(k, 0)) for k, v in expected[name].items() if got[name].get(k, 0) != v}
        extra = {k: got[name][k] for k in got[name].keys() - expected[name].keys()}
        assert not missing and not extra, (
            f"{name}: {len(missing)} wrong (expected, got), e.g. {list(missing.items())[:5]}; "
            f"{len(extra)} unexpected, e.g. {list(extra.items())[:5]}"
        )


def dead_letters() -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "fault-tests"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition("dlq_sink", 0), timeout=10)
        return high - low
    finally:
        c.close()


def kill(service: str) -> int:
    """kill -9 a service's whole process group, as a crashed container; returns the dead pid."""
    pid = running_pid(service)
    assert pid, f"{service} is not running"
    os.killpg(pid, signal.SIGKILL)
    return pid


def pipeline_running() -> bool:
    """Every service healthy, the Flink job running, every connector task running."""
    try:
        if not all(running_pid(s.name) and s.healthy() for s in services.SERVICES.values()):
            return False
        job = pipeline.live_job()
        if not job or job["state"] != "RUNNING":
            return False
        return all(state == "RUNNING" for state in sink.connector_states().values())
    except (httpx.HTTPError, ValueError, KeyError, OSError):
        return False


def wait_recovered(service: str, dead_pid: int, timeout: float = 300) -> float:
    """Seconds from now until the supervisor restarted `service` (a new process)
    and the whole pipeline runs again."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pid = running_pid(service)
        # the lock free: the supervisor is not in the middle of putting things back
        with services.control_lock(wait=False) as supervisor_idle:
            if supervisor_idle and pid and pid != dead_pid and pipeline_running():
                return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(
        f"{service} did not recover within {timeout:.0f}s:\n" + _tail(services.SERVICES["supervisor"].log, 30)
    )


@pytest.fixture
def quiet_pipeline(stack):
    """The stack, caught up: what is in PostgreSQL is the pipeline's whole answer so far."""
    wait_caught_up()
    yield
