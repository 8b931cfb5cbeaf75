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
from datetime import UTC, datetime

import reference
from producer.sources.synthetic import synthetic_posts
from tests.conftest import REPO

from .conftest import assert_counted, dead_letters, expected_delta, kill, snapshot, wait_caught_up, wait_recovered

POSTS = int(os.environ.get("FAULT_POSTS", "100000"))
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "1"))
RATE = float(os.environ.get("FAULT_RATE", "2500"))  # posts per second the producer sends
KILLED = [
    "kafka",
    "registry",
    "flink-jobmanager",
    "flink-taskmanager",
    "flink-sql-gateway",
    "connect",
    "postgres",
    "api",
]
RESULTS = REPO / "test-artifacts" / "reliability"


def test_kill_each_service_mid_stream(quiet_pipeline):
    seed = int(time.time())  # new post ids on every run
    start = datetime.now(UTC).replace(microsecond=0)
    posts = [p._asdict() for p in synthetic_posts(POSTS, seed=seed, start=start, posts_per_minute=RATE * 60)]
    expected = expected_delta(posts)
    before, dlq_before = snapshot(), dead_letters()
    producer_cmd = [
        sys.executable,
        "-m",
        "producer.cli",
        "synthetic",
        "--count",
        str(POSTS),
        "--seed",
        str(seed),
        "--rate",
        str(RATE),
        "--start",
        start.isoformat(),
        "--metrics-port",
        "-1",
    ]
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
    (RESULTS / "crash-recovery.json").write_text(
        json.dumps(
            {
                "posts": POSTS,
                "rounds": ROUNDS,
                "rate": RATE,
                "seed": seed,
                "order": order,
                "recovery_seconds": recovery,
                "catch_up_after_last_kill_s": round(catch_up, 1),
                "total_s": round(time.monotonic() - t0, 1),
            },
            indent=2,
        )
    )
    assert_counted(expected, before, reference.minute(posts[0]["created_at"]))
    assert dead_letters() == dlq_before, "a crash put records into the dead-letter topic"
