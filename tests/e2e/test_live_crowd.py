"""A crowd of open pages while posts flow: 1,000 live streams, each behaving like
the page: it reads the stats every 5 s, and one page in ten, whose visitor chose
the hashtags of its timeline (what the event does not carry), refetches that
timeline on every update. The counts stay served, and the database is asked once
per answer, not once per page."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import time

import httpx

from stack.common import SERVING_DB, pg_connect
from tests.conftest import REPO

API = "http://127.0.0.1:8000"
PAGES = 1000
SECONDS = 25


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def _connect(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A page's connection, plain asyncio: a client library's pool for 1,000 pages
    would cost the test more CPU than the server spends answering them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", 8000)
    if path:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n".encode())
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
    return reader, writer


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """GET on a kept-alive connection; the answer's status (its body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n".encode())
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _crowd() -> dict:
    updates: list[int] = [0] * PAGES
    fetched: dict[int, int] = {}
    carried: list[dict] = []

    async def page(i: int) -> None:
        stream, stream_writer = await _connect("/api/stream")
        api = await _connect("")
        last_stats = time.monotonic()
        try:
            while line := await stream.readline():
                if not line.startswith(b"data: "):
                    continue
                updates[i] += 1
                if i == 0:
                    carried.append(json.loads(line[6:]))
                if i % 10 == 0:
                    status = await _get(*api, "/api/timeline?minutes=60&hashtag=covid&hashtag=vaccin")
                    fetched[status] = fetched.get(status, 0) + 1
                if time.monotonic() - last_stats >= 5:
                    last_stats = time.monotonic()
                    await _get(*api, "/api/stats")
        finally:
            stream_writer.close()
            api[1].close()

    async with httpx.AsyncClient(base_url=API, timeout=30) as visitor:  # someone else, not one of the pages
        pages = [asyncio.create_task(page(i)) for i in range(PAGES)]
        await asyncio.sleep(3)  # every page open
        before = (await visitor.get("/metrics")).text
        latencies, statuses = [], []
        t_end = time.monotonic() + SECONDS
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            r = await visitor.get("/api/hashtags", params={"limit": 20})
            latencies.append(time.perf_counter() - t0)
            statuses.append(r.status_code)
            await asyncio.sleep(0.1)
        after = (await visitor.get("/metrics")).text
        for t in pages:
            t.cancel()
        await asyncio.gather(*pages, return_exceptions=True)
    return {
        "updates": updates,
        "carried": carried,
        "latencies": sorted(latencies),
        "statuses": statuses,
        "fetched": fetched,
        "before": before,
        "after": after,
    }


def _api_statements() -> int:
    """Statements PostgreSQL executed for the API's role (pg_stat_statements, in the serving database)."""
    with pg_connect(db=SERVING_DB) as conn:
        return conn.execute(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
            "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'api_reader'"
        ).fetchone()[0]


def _wait_until_quiet(conn, quiet: float = 3, timeout: float = 60) -> None:
    """Until the posts counted stop changing for `quiet` seconds (the producer's last posts counted)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = conn.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone()
        if posts != last:
            last, since = posts, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)


def _wait_until_counting(timeout: float = 60) -> None:
    """Until the pipeline counts the producer's posts: the pages count live updates,
    and right after a stack start the first posts take a few seconds to be counted."""
    first = httpx.get(f"{API}/api/stats", timeout=10).json()["posts_counted"]
    deadline = time.monotonic() + timeout
    while httpx.get(f"{API}/api/stats", timeout=10).json()["posts_counted"] < first + 300:
        assert time.monotonic() < deadline, f"the pipeline counted nothing new in {timeout:.0f} s"
        time.sleep(0.5)


def test_a_thousand_open_pages_while_posts_flow(reader_db):
    # a seed of its own: the default one's posts were counted before (the pipeline drops a repeated id)
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "synthetic",
            "--count",
            str(300 * (SECONDS + 10)),
            "--rate",
            "300",
            "--start",
            "now",
            "--seed",
            str(random.randrange(1, 2**31)),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_counting()
        statements_before = _api_statements()
        run = asyncio.run(_crowd())
        statements = _api_statements() - statements_before
    finally:
        producer.kill()
        producer.wait()
        _wait_until_quiet(reader_db)  # the next test reads counts that must not move under it
    assert set(run["statuses"]) == {200}, sorted(set(run["statuses"]))
    p95 = run["latencies"][int(len(run["latencies"]) * 0.95)]
    assert p95 <= 0.5, f"/api/hashtags p95 {p95:.3f} s with {PAGES} pages open"
    updates = run["updates"]
    assert min(updates) >= 3, f"every page got live updates: {sorted(updates)[:10]}... {sorted(updates)[-3:]}"
    assert set(run["fetched"]) == {200}, run["fetched"]
    event = run["carried"][-1]
    assert {"posts_counted", "newest_event_ms", "last_update", "hashtags", "unigrams", "trending", "timeline"} <= set(
        event
    )
    assert event["timeline"]["minutes"] == 60 and len(event["timeline"]["series"]) == 5
    assert len(event["hashtags"]) > 0 and {"hashtag", "count"} == set(event["hashtags"][0])

    # the database was asked for the timeline at most once per cached answer (1 s), however many pages asked
    def gained(result: str) -> float:
        return _metric(run["after"], "api_cache_total", path="/api/timeline", result=result) - _metric(
            run["before"], "api_cache_total", path="/api/timeline", result=result
        )

    # from memory: fresh (hit) or just expired while the next answer was computed (stale)
    asked, served = gained("miss"), gained("hit") + gained("stale")
    print(
        f"{PAGES} pages: updates per page {min(updates)}-{max(updates)}, /api/hashtags p95 {p95 * 1000:.0f} ms, "
        f"timeline answered {served + asked:.0f} times from {asked:.0f} queries"
    )
    assert served >= PAGES // 10 * 3
    assert asked <= SECONDS + 5, f"{asked} timeline queries for {served + asked} requests"
    # what PostgreSQL saw from the API in that time: a bounded number of statements a second
    # (the stream's poll and event, one per cached answer), not one per page or per update
    requests = sum(run["fetched"].values()) + sum(updates)
    print(f"PostgreSQL: {statements} statements from the API for {requests:,} updates and fetches")
    assert statements <= 20 * (SECONDS + 10), f"{statements} statements for {requests} updates and fetches"
