"""Crash every service in turn (kill -9) while posts stream in; the supervisor
restarts it as the stack would, and the counts in PostgreSQL come out exact:
nothing lost, nothing counted twice.

Short mode (make test): FAULT_POSTS=100000, each service killed once.
Long mode (make test-faults): 300,000 posts, three rounds (FAULT_POSTS, FAULT_ROUNDS)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone

from producer.sources.synthetic import synthetic_posts
from tests import reference
from tests.conftest import REPO

from .conftest import dead_letters, kill, snapshot, wait_caught_up, wait_recovered

POSTS = int(os.environ.get("FAULT_POSTS", "100000"))
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "1"))
RATE = float(os.environ.get("FAULT_RATE", "2500"))  # posts per second the producer sends
KILLED = ["kafka", "registry", "flink-jobmanager", "flink-taskmanager", "connect", "postgres", "api"]
RESULTS = REPO / "test-artifacts" / "reliability"


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
    return Counter({k: after.get(k, 0) - before.get(k, 0) for k in after.keys() | before.keys()
                    if after.get(k, 0) != before.get(k, 0)})


def test_kill_each_service_mid_stream(quiet_pipeline):
    seed = int(time.time())  # new post ids on every run
    start = datetime.now(timezone.utc).replace(microsecond=0)
    posts = [p._asdict() for p in synthetic_posts(POSTS, seed=seed, start=start, posts_per_minute=RATE * 60)]
    expected = expected_delta(posts)
    before, dlq_before = snapshot(), dead_letters()
    producer_cmd = [sys.executable, "-m", "producer.cli", "synthetic", "--count", str(POSTS), "--seed", str(seed),
                    "--rate", str(RATE), "--start", start.isoformat(), "--metrics-port", "-1"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = open(RESULTS / f"producer-{seed}.log", "w")

    def start_producer():
        return subprocess.Popen(producer_cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    rng = random.Random(seed)
    order = [s for _ in range(ROUNDS) for s in rng.sample(KILLED, len(KILLED))]
    recovery: dict[str, list[float]] = {}
    t0 = time.monotonic()
    producer = start_producer()
    # the producer crashes first, a few seconds in: its restart sends every post again
    time.sleep(rng.uniform(3, 8))
    producer.kill()
    producer.wait()
    producer = start_producer()
    for service in order:
        time.sleep(rng.uniform(2, 8))
        dead = kill(service)
        took = wait_recovered(service, dead)
        recovery.setdefault(service, []).append(round(took, 1))
        print(f"{service}: killed, pipeline running again after {took:.1f}s", flush=True)
    assert producer.wait(timeout=POSTS / RATE * 3 + 600) == 0, "the producer failed (see its log)"
    catch_up = wait_caught_up(timeout=600 + POSTS / 250)  # Flink counts ~1,500 posts/s here; a backlog takes a while
    got = {name: difference(table, before[name]) for name, table in snapshot().items()}
    # older minutes may be pruned meanwhile (retention counts back from the newest post): not ours
    first_minute = reference.minute(posts[0]["created_at"])
    for name in ("hashtag_minutes", "word_minutes"):
        got[name] = Counter({k: v for k, v in got[name].items() if k[0] >= first_minute})

    (RESULTS / "crash-recovery.json").write_text(json.dumps({
        "posts": POSTS, "rounds": ROUNDS, "rate": RATE, "seed": seed, "order": order,
        "recovery_seconds": recovery, "catch_up_after_last_kill_s": round(catch_up, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }, indent=2))
    for name in expected:
        missing = {k: (v, got[name].get(k, 0)) for k, v in expected[name].items() if got[name].get(k, 0) != v}
        extra = {k: got[name][k] for k in got[name].keys() - expected[name].keys()}
        assert not missing and not extra, (
            f"{name}: {len(missing)} wrong (expected, got), e.g. {list(missing.items())[:5]}; "
            f"{len(extra)} unexpected, e.g. {list(extra.items())[:5]}")
    assert dead_letters() == dlq_before, "a crash put records into the dead-letter topic"
