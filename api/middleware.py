"""ASGI middlewares (plain ASGI: Starlette's BaseHTTPMiddleware costs more than
the queries it wraps). Metrics per route; a short-lived cache of the JSON
answers, which change at most once per Flink checkpoint anyway."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Histogram

REQUESTS = Counter("api_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram(
    "api_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
CACHE = Counter(
    "api_cache_total",
    "answers served from the response cache (a hit, or stale while the next is computed) or computed (a miss)",
    ["path", "result"],
)
log = logging.getLogger(__name__)


class Metrics:
    """Counts and times every request by route template (never by raw path)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None) or scope.get("cached_route") or "unmatched"
            if route != "/api/stream":
                LATENCY.labels(route).observe(time.perf_counter() - start)
            REQUESTS.labels(route, str(status)).inc()


class ResponseCache:
    """Serves a GET answer of the given paths from memory for `seconds` after it
    was computed (per path and query string). 0 turns the cache off. While an
    answer is being computed, the same request waits for it instead of asking
    the database too (every open page asks at once when the counts change).
    An answer that expired less than `stale_seconds` ago is still served at once
    while one request's worth of work computes the next in the background: no
    request waits for the database when the answer turns over each second."""

    def __init__(
        self,
        app,
        paths: set[str],
        seconds: float,
        stale_seconds: float = 5.0,
        max_entries: int = 10_000,
        max_bytes: int = 32 * 2**20,
    ):
        self.app, self.paths, self.seconds, self.stale_seconds = app, paths, seconds, stale_seconds
        self.refreshes: set[asyncio.Task] = set()  # references, or the loop may drop a running refresh
        # bounded: odd query strings must not grow it forever, in entries or in bytes
        # (every distinct query string is an entry; a 64 KiB one can echo back as much)
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries: dict[str, tuple[float, list[tuple[bytes, bytes]], bytes]] = {}
        self.size = 0  # bytes of the keys and bodies held
        self.computing: dict[str, asyncio.Event] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths or self.seconds <= 0:
            return await self.app(scope, receive, send)
        key = scope["path"] + "?" + scope["query_string"].decode("latin-1")
        if await self._serve_cached(key, scope, send):
            return
        computing = self.computing.get(key)
        if computing is not None:
            await computing.wait()
            if await self._serve_cached(key, scope, send):
                return
            # that answer was not kept (an error): this request makes its own
            return await self._compute(key, scope, receive, send)
        release = self._claim(key)
        try:
            await self._compute(key, scope, receive, send)
        finally:
            release()

    async def _serve_cached(self, key: str, scope, send) -> bool:
        hit = self.entries.get(key)
        age = time.monotonic() - hit[0] if hit else float("inf")
        if age >= self.seconds + self.stale_seconds:
            return False
        if age < self.seconds:
            CACHE.labels(scope["path"], "hit").inc()
        else:  # expired lately: this answer now, the next one computed in the background
            CACHE.labels(scope["path"], "stale").inc()
            if key not in self.computing:
                self._refresh(key, scope)
        scope["cached_route"] = scope["path"]
        await send({"type": "http.response.start", "status": 200, "headers": hit[1]})
        await send({"type": "http.response.body", "body": hit[2]})
        return True

    def _claim(self, key: str):
        """Marks key as being computed, so that its requests wait instead of computing
        too (at once, before any await); the function returned ends that."""
        done = self.computing[key] = asyncio.Event()

        def release() -> None:
            del self.computing[key]
            done.set()

        return release

    def _refresh(self, key: str, scope) -> None:
        """Computes the answer for key without a client waiting (one at a time per key)."""
        release = self._claim(key)

        async def refresh() -> None:
            try:
                await self._compute(key, dict(scope), _no_body, _discard)
            except Exception:  # no client to tell: logged; a later request computes it inline
                log.exception("refreshing the cached answer of %s failed", key)
            finally:
                release()

        task = asyncio.get_running_loop().create_task(refresh())
        self.refreshes.add(task)
        task.add_done_callback(self.refreshes.discard)

    async def _compute(self, key: str, scope, receive, send) -> None:
        now = time.monotonic()
        CACHE.labels(scope["path"], "miss").inc()
        start: dict = {}
        body = bytearray()

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body") and start.get("status") == 200:
                    self._store(key, (now, list(start["headers"]), bytes(body)))
            await send(message)

        await self.app(scope, receive, capture)

    def _store(self, key: str, entry: tuple[float, list[tuple[bytes, bytes]], bytes]) -> None:
        size = len(key) + len(entry[2])
        old = self.entries.get(key)
        # a request that began later already stored its (newer) answer: keep it, or a
        # client could see counts go down
        if size > self.max_bytes or (old is not None and old[0] > entry[0]):
            return
        if old is not None:
            del self.entries[key]
            self.size -= len(key) + len(old[2])
        if len(self.entries) >= self.max_entries or self.size + size > self.max_bytes:
            self.entries.clear()
            self.size = 0
        self.entries[key] = entry
        self.size += size


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message) -> None:
    pass


# The page loads its scripts, styles and data from this origin only, is never
# framed, and tells other sites nothing about where their visitors came from.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer (the page's and the API's). FastAPI's
    /docs and /redoc load their scripts from a CDN and run inline ones: no CSP there."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = SECURITY_HEADERS[1:] if scope["path"] in ("/docs", "/redoc") else SECURITY_HEADERS

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
