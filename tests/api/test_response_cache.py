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


def test_a_slow_older_answer_does_not_replace_a_newer_one():
    """Request 1 reads the counts, then is slow to answer; meanwhile the counts grow and
    request 2 reads and answers the newer ones. Request 1's late answer must not become the
    cached one: request 3 would show a client counts going down."""
    state = {"counts": b"old"}
    gate = asyncio.Event()
    calls = 0

    async def app(scope, receive, send):
        nonlocal calls
        calls += 1
        body = state["counts"]          # what the database said at this moment
        if calls == 1:
            await gate.wait()          # e.g. waiting for a connection of the pool
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    cache = ResponseCache(app, paths={"/x"}, seconds=60)
    get = getter(cache)

    async def main() -> tuple[bytes, bytes, bytes]:
        first = asyncio.create_task(get())
        while calls < 1:
            await asyncio.sleep(0)
        state["counts"] = b"new"
        second = await get()
        gate.set()
        return await first, second, await get()

    first, second, third = asyncio.run(main())
    assert (first, second) == (b"old", b"new")
    assert third == b"new"
    assert calls == 2  # the third came from the cache
