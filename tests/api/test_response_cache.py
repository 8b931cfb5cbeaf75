"""The API's response cache (api/middleware.py) on its own, around a stand-in app:
bounded in bytes whatever the query strings, and never going back to an older
answer than one it already gave."""

from __future__ import annotations

import asyncio

from api.middleware import ResponseCache


def getter(cache: ResponseCache, path: str = "/x"):
    async def get(query: bytes = b"") -> bytes:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        await cache({"type": "http", "method": "GET", "path": path, "query_string": query}, None, send)
        assert sent[0]["status"] == 200
        return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    return get


def test_the_cache_is_bounded_in_bytes_as_well_as_entries():
    """Every distinct query string is an entry: 10,000 entries with 64 KiB keys (what an HTTP
    server takes) and answers that echo them (/api/timeline does) would hold over a GiB."""

    async def echo(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["query_string"]})

    cache = ResponseCache(echo, paths={"/x"}, seconds=60, max_bytes=1_000_000)
    get = getter(cache)

    async def main() -> list[int]:
        held = []
        for i in range(100):
            query = f"{i}=".encode() + b"z" * 50_000
            assert await get(query) == query
            held.append(sum(len(k) + len(v[2]) for k, v in cache.entries.items()))
        return held

    held = asyncio.run(main())
    assert max(held) <= 1_000_000
    assert held[-1] > 0  # it still caches


def test_a_request_arriving_during_a_slow_answer_gets_that_answer_never_an_older_one():
    """Request 1 reads the counts, then is slow to answer (waiting for a connection of the
    pool, say); meanwhile the counts grow. Request 2 waits for request 1's answer instead of
    computing its own, and request 3 comes from the cache: no client ever sees counts go
    down, and the database is asked once."""
    state = {"counts": b"old"}
    gate = asyncio.Event()
    calls = 0

    async def app(scope, receive, send):
        nonlocal calls
        calls += 1
        body = state["counts"]  # what the database said at this moment
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    cache = ResponseCache(app, paths={"/x"}, seconds=60)
    get = getter(cache)

    async def main() -> tuple[bytes, bytes, bytes]:
        first = asyncio.create_task(get())
        while calls < 1:
            await asyncio.sleep(0)
        state["counts"] = b"new"
        second = asyncio.create_task(get())
        await asyncio.sleep(0.01)
        gate.set()
        return await first, await second, await get()

    assert asyncio.run(main()) == (b"old", b"old", b"old")
    assert calls == 1


def test_requests_arriving_while_an_answer_is_computed_wait_for_it_instead_of_asking_again():
    """When the counts change every open page asks at once: one of them reaches the database."""
    calls = []

    async def slow(scope, receive, send):
        calls.append(scope["query_string"])
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"answer " + scope["query_string"]})

    cache = ResponseCache(slow, paths={"/x"}, seconds=60)
    get = getter(cache)

    async def main():
        return await asyncio.gather(*(get(b"a=1") for _ in range(500)), *(get(b"a=2") for _ in range(500)))

    bodies = asyncio.run(main())
    assert sorted(calls) == [b"a=1", b"a=2"]
    assert set(bodies[:500]) == {b"answer a=1"} and set(bodies[500:]) == {b"answer a=2"}


def test_after_an_error_answer_the_waiting_requests_are_answered_each_by_its_own():
    calls = []

    async def failing_once(scope, receive, send):
        calls.append(1)
        await asyncio.sleep(0.02)
        status = 503 if len(calls) == 1 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    cache = ResponseCache(failing_once, paths={"/x"}, seconds=60)
    statuses = []

    async def get():
        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await cache({"type": "http", "method": "GET", "path": "/x", "query_string": b""}, None, send)

    async def main():
        await asyncio.gather(*(get() for _ in range(5)))

    asyncio.run(main())
    assert statuses.count(503) == 1 and statuses.count(200) == 4
    assert len(calls) == 5


def test_an_answer_just_expired_is_served_at_once_while_one_refresh_computes_the_next():
    """When the answer turns over (every second), no request waits for the database: the
    expired answer is served while one computation runs in the background; the next
    requests get its result. An answer older than the stale window is computed inline."""
    state = {"counts": b"v1"}
    gate = asyncio.Event()
    gate.set()
    calls = 0

    async def app(scope, receive, send):
        nonlocal calls
        calls += 1
        body = state["counts"]
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    cache = ResponseCache(app, paths={"/x"}, seconds=0.05, stale_seconds=0.5)
    get = getter(cache)

    async def main():
        assert await get() == b"v1"
        await asyncio.sleep(0.06)  # expired, within the stale window
        state["counts"] = b"v2"
        gate.clear()  # the database is slow to answer
        during = await asyncio.wait_for(asyncio.gather(*(get() for _ in range(100))), timeout=1)
        assert calls == 2  # one refresh, started by the first of them
        gate.set()
        await asyncio.gather(*cache.refreshes)
        after = await get()
        state["counts"] = b"v3"
        await asyncio.sleep(0.6)  # past the stale window: computed inline
        late = await get()
        return set(during), after, late

    assert asyncio.run(main()) == ({b"v1"}, b"v2", b"v3")
    assert calls == 3


def test_a_refresh_that_fails_keeps_the_stale_answer_and_the_next_request_tries_again():
    calls = []

    async def app(scope, receive, send):
        calls.append(1)
        status = 503 if len(calls) == 2 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"answer %d" % len(calls)})

    cache = ResponseCache(app, paths={"/x"}, seconds=0.05, stale_seconds=5)
    get = getter(cache)

    async def main():
        first = await get()
        await asyncio.sleep(0.06)
        stale = await get()  # served; its refresh gets a 503 (not kept)
        await asyncio.gather(*cache.refreshes)
        again = await get()  # still the old answer; a new refresh (200)
        await asyncio.gather(*cache.refreshes)
        return first, stale, again, await get()

    assert asyncio.run(main()) == (b"answer 1", b"answer 1", b"answer 1", b"answer 3")
    assert len(calls) == 3
