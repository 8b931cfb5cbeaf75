"""The live API under concurrent load while the sink writes.

A replay of 3,000 posts (plus 30 duplicates) with hashtags unique to the run flows
through the real pipeline at its original pace (~20 s) while 20 clients hammer
every read endpoint. Every answer is a 200, well formed and sorted as the
contract says; the counts any client sees never go down (the tables only grow);
and once the pipeline caught up, the API shows exactly the expected counts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx

from api.core.config import settings
from tests.conftest import REPO

API = "http://127.0.0.1:8000"
CLIENTS = 20
MAX_REQUESTS = 1000  # per client, at most
POSTS = 3000
DUPLICATES = 30  # the first posts sent again (same ids): not counted twice
STEP_MS = 7  # event time between posts: the replay takes POSTS * STEP_MS ms at --speed 1
TAGS = 8
DEADLINE_S = 80  # for the replay, the pipeline and the load together
SETTLE_S = 5  # after the counts are reached: two more checkpoints, nothing may move
# an answer may come from the API's response cache, computed up to this long before
CACHE_S = settings.cache_seconds + 0.2


def make_replay(path, run: str, newest_ms: int | None) -> dict[str, int]:
    """The replay file; returns the expected count of each of the run's hashtags.
    Event times end at the newest event already counted, so the stack's windows do not move."""
    end = newest_ms or int(time.time() * 1000)
    start = end - (POSTS - 1) * STEP_MS
    tags = [f"conc{run}t{k}" for k in range(TAGS)]
    expected: Counter[str] = Counter()
    lines = []
    for i in range(POSTS):
        mine = [t for k, t in enumerate(tags) if i % (k + 1) == 0]  # counts 3000, 1500, 1000, 750, 600, 500, 429, 375
        expected.update(mine)
        shown = [t.upper() if i % 2 and k == 0 else t for k, t in enumerate(mine)]  # #CONC…T0 is conc…t0
        created = datetime.fromtimestamp((start + i * STEP_MS) / 1000, UTC)
        lines.append(
            json.dumps(
                {
                    "id": f"conc-{run}-{i}",
                    "text": f"Le vaccin n°{i} " + " ".join(f"#{t}" for t in shown),
                    "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "author_id": str(i % 97),
                    "lang": "fr",
                }
            )
        )
    lines += lines[:DUPLICATES]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(set(expected.values())) == TAGS  # distinct counts: the order of the tags is exact too
    return dict(expected)


def sorted_as_contract(rows: list[dict], key: str) -> bool:
    return rows == sorted(rows, key=lambda r: (-r["count"], r[key]))


def check_counts(rows: object, key: str, limit: int) -> None:
    assert isinstance(rows, list) and len(rows) <= limit
    for r in rows:
        assert set(r) == {key, "count"} and isinstance(r[key], str) and type(r["count"]) is int and r["count"] > 0, r
    assert len({r[key] for r in rows}) == len(rows)
    assert sorted_as_contract(rows, key), rows[:10]


def check_timeline(tl: object, minutes: int, tags: list[str] | None) -> None:
    assert isinstance(tl, dict) and set(tl) == {"start_ms", "minutes", "series"}
    assert tl["minutes"] == minutes
    if tl["start_ms"] is None:  # nothing counted yet (a fresh stack): no period, no series
        assert tl["series"] == []
        return
    assert type(tl["start_ms"]) is int and tl["start_ms"] % 60_000 == 0
    if tags is not None:
        assert [s["hashtag"] for s in tl["series"]] == tags
    for s in tl["series"]:
        assert len(s["counts"]) == minutes and all(type(c) is int and c >= 0 for c in s["counts"])


def check_trending(rows: object) -> None:
    assert isinstance(rows, list)
    assert [r["rank"] for r in rows] == sorted({r["rank"] for r in rows})
    assert len({r["window_end_ms"] for r in rows}) <= 1


def check_stats(s: object) -> None:
    assert isinstance(s, dict) and type(s["posts_counted"]) is int and s["posts_counted"] >= 0
    assert {"newest_event", "last_update", "freshness_seconds", "rejected", "pipeline"} <= set(s)


def never_decrease(observations: list[tuple[float, float, dict[str, int]]], slack: float = 0.0) -> list[str]:
    """(sent, received, values) answers: one sent more than `slack` s after another was received
    must show every value at least as large. Returns the violations."""
    by_received = sorted(observations, key=lambda o: o[1])
    best: dict[str, tuple[int, float]] = {}
    problems, j = [], 0
    for sent, _received, values in sorted(observations, key=lambda o: o[0]):
        while j < len(by_received) and by_received[j][1] + slack < sent:
            for k, v in by_received[j][2].items():
                if v > best.get(k, (-1, 0))[0]:
                    best[k] = (v, by_received[j][1])
            j += 1
        for k, v in values.items():
            if k in best and v < best[k][0]:
                problems.append(
                    f"{k}: {v} in an answer sent at {sent:.3f}, after {best[k][0]} in one received at {best[k][1]:.3f}"
                )
    return problems


def test_concurrent_readers_while_the_sink_writes(reader_db, tmp_path):
    run = uuid.uuid4().hex[:10]
    newest = reader_db.execute("SELECT newest_event_ms FROM post_stats WHERE stat = 'all'").fetchone()
    replay = tmp_path / "concurrency.jsonl"
    expected = make_replay(replay, run, newest[0] if newest else None)
    tags = sorted(expected, key=lambda t: -expected[t])
    posts_before = reader_db.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone()
    posts_before = posts_before[0] if posts_before else 0

    with open(tmp_path / "replay.log", "w+") as log:
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "replay", str(replay), "--speed", "1"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            obs, bad, counts = asyncio.run(hammer(tags, expected, producer))
        finally:
            if producer.poll() is None:
                producer.kill()
            producer.wait(10)
        log.seek(0)
        out = " ".join(log.read().split())
    assert producer.returncode == 0, out
    assert f"sent {POSTS + DUPLICATES} posts to 'tweets'" in out and "rejected 0 lines" in out

    # every answer was a 200, well formed and sorted
    assert bad == [], bad[:10]
    assert sum(counts.values()) >= CLIENTS * 50, counts
    assert set(counts) == set(ENDPOINTS), counts
    # the load overlapped the writes: the clients saw the counts grow, checkpoint by checkpoint
    seen = sorted({values[tags[0]] for _, _, values in obs["all-time"]})
    assert len(seen) >= 4 and seen[0] < expected[tags[0]] // 2, seen
    # counts never went down: per URL, for any client, even through the response cache...
    for name in ("all-time", "all-time window=all", "timeline", "stats"):
        assert never_decrease(obs[name]) == [], name
    # ... and across URLs, up to the cache's age
    assert never_decrease(obs["all-time"] + obs["all-time window=all"], slack=CACHE_S) == []

    # the pipeline caught up: exactly the expected counts, by all-time count and by minute
    rows = httpx.get(f"{API}/api/hashtags", params={"limit": 1000}, timeout=10).json()
    served = {r["hashtag"]: r["count"] for r in rows if r["hashtag"].startswith(f"conc{run}")}
    assert served == expected
    mine = [r["hashtag"] for r in rows if r["hashtag"] in expected]
    assert mine == tags  # in count order
    tl = httpx.get(f"{API}/api/timeline", params={"hashtag": tags, "minutes": 1440}, timeout=10).json()
    assert {s["hashtag"]: sum(s["counts"]) for s in tl["series"]} == expected
    posts_after = httpx.get(f"{API}/api/stats", timeout=10).json()["posts_counted"]
    assert posts_after >= posts_before + POSTS


ENDPOINTS = {
    # name: (path, params)
    "all-time": ("/api/hashtags", {"limit": 1000}),
    "all-time window=all": ("/api/hashtags", {"limit": 1000, "window": "all"}),
    "hashtags 5m": ("/api/hashtags", {"window": "5m", "limit": 50}),
    "hashtags 24h": ("/api/hashtags", {"window": "24h", "limit": 1000}),
    "unigrams": ("/api/unigrams", {"limit": 100}),
    "unigrams 1h": ("/api/unigrams", {"window": "1h"}),
    "timeline": ("/api/timeline", None),  # the run's hashtags, 1440 minutes
    "timeline top": ("/api/timeline", {"minutes": 60}),
    "trending": ("/api/trending", {"limit": 20}),
    "stats": ("/api/stats", {}),
}


async def hammer(tags: list[str], expected: dict[str, int], producer: subprocess.Popen):
    """CLIENTS clients, each with its own connection, through every endpoint in turn, until the replay
    ended and the all-time counts reached the expected ones (then SETTLE_S more), or MAX_REQUESTS each."""
    obs: dict[str, list] = {name: [] for name in ENDPOINTS}
    bad: list[str] = []
    counts: Counter[str] = Counter()
    reached = asyncio.Event()
    stop = asyncio.Event()
    names = list(ENDPOINTS)
    done: list[int] = []

    async def client(n: int) -> None:
        try:
            await requests(n)
        finally:
            done.append(n)

    async def requests(n: int) -> None:
        async with httpx.AsyncClient(base_url=API, timeout=15) as http:
            for i in range(MAX_REQUESTS):
                if stop.is_set():
                    return
                name = names[(n + i) % len(names)]
                path, params = ENDPOINTS[name]
                if params is None:
                    params = {"hashtag": tags, "minutes": 1440}
                sent = time.monotonic()
                try:
                    r = await http.get(path, params=params)
                except httpx.HTTPError as e:
                    bad.append(f"{name}: {e!r}")
                    continue
                received = time.monotonic()
                counts[name] += 1
                if r.status_code != 200:
                    bad.append(f"{name}: HTTP {r.status_code} {r.text[:200]}")
                    continue
                try:
                    body = r.json()
                    if path in ("/api/hashtags", "/api/unigrams"):
                        check_counts(body, "hashtag" if path == "/api/hashtags" else "word", params.get("limit", 20))
                    elif path == "/api/timeline":
                        check_timeline(body, params["minutes"], tags if "hashtag" in params else None)
                    elif path == "/api/trending":
                        check_trending(body)
                    else:
                        check_stats(body)
                except (AssertionError, KeyError, TypeError, ValueError) as e:
                    bad.append(f"{name}: malformed answer ({e!r}): {r.text[:300]}")
                    continue
                if name.startswith("all-time"):
                    served = {row["hashtag"]: row["count"] for row in body}
                    values = {t: served.get(t, 0) for t in expected}  # not there yet (or any more!): 0
                    if values == expected:
                        reached.set()
                elif name == "timeline":
                    values = {s["hashtag"]: sum(s["counts"]) for s in body["series"]}
                elif name == "stats":
                    values = {"posts_counted": body["posts_counted"]}
                else:
                    continue
                obs[name].append((sent, received, values))

    async def referee() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and len(done) < CLIENTS:
            if producer.poll() is not None and reached.is_set():
                await asyncio.sleep(SETTLE_S)
                break
            await asyncio.sleep(0.2)
        stop.set()

    await asyncio.gather(referee(), *(client(n) for n in range(CLIENTS)))
    if not reached.is_set():
        last = obs["all-time"][-1][2] if obs["all-time"] else {}
        bad.append(f"the counts did not reach {expected} in {DEADLINE_S}s; last seen {last}")
    return obs, bad, counts
