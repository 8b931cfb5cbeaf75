"""Local stand-ins for the X API v2 and Bluesky Jetstream, on 127.0.0.1 only.

They answer in the real shapes (tweet objects, rule documents, problem documents,
Jetstream commit events) and play a script per connection, so that the producer's
real clients (tweepy, websockets) meet 429s, disconnects and malformed frames.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

# reconnect waits short enough for tests (settings of producer.config)
FAST_BACKOFF = dict(
    reconnect_base_s=0.01,
    reconnect_max_s=0.05,
    http_error_base_s=0.01,
    http_error_max_s=0.05,
    rate_limit_base_s=0.02,
    rate_limit_max_s=0.2,
)


def collect(source, posts: int, timeout: float = 10.0) -> tuple[list, list]:
    """Read a live source until it gave `posts` posts (then close it): (posts, rejects)."""
    from producer.post import Post
    from producer.run import Reject

    got, rejects = [], []
    deadline = time.monotonic() + timeout
    try:
        for item in source:
            if isinstance(item, Post):
                got.append(item)
            elif isinstance(item, Reject):
                rejects.append(item)
            if len(got) >= posts:
                break
            assert time.monotonic() < deadline, f"only {len(got)} posts after {timeout}s: {got}"
    finally:
        source.close()
    return got, rejects


# ---------------------------------------------------------------- payloads in the real shapes

TOO_MANY_CONNECTIONS = {
    "title": "ConnectionException",
    "detail": "This stream is currently at the maximum allowed connection limit.",
    "connection_issue": "TooManyConnections",
    "type": "https://api.twitter.com/2/problems/streaming-connection",
}
CLIENT_NOT_ENROLLED = {
    "client_id": "101",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
    "and tokens from a Twitter developer App that is attached to a Project.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
OPERATIONAL_DISCONNECT = {
    "errors": [
        {
            "title": "operational-disconnect",
            "disconnect_type": "UpstreamOperationalDisconnect",
            "detail": "This stream has been disconnected upstream for operational reasons.",
            "type": "https://api.twitter.com/2/problems/operational-disconnect",
        }
    ]
}


def tweet(n: int, text: str, *, lang: str = "fr", created: str = "2021-03-01T10:00:00.000Z") -> dict:
    return {
        "id": str(1366000000000000000 + n),
        "text": text,
        "created_at": created,
        "author_id": str(4000 + n),
        "lang": lang,
        "edit_history_tweet_ids": [str(1366000000000000000 + n)],
    }


def stream_frame(t: dict, rule_ids: list[str], tag: str = "tweetstream") -> bytes:
    return json.dumps({"data": t, "matching_rules": [{"id": i, "tag": tag} for i in rule_ids]}).encode()


def jetstream_post(
    n: int,
    text: str,
    *,
    langs: list[str] | None = None,
    tags: list[str] = (),
    did: str = "did:plc:testuser",
    created: str = "2024-09-09T19:46:02.102Z",
) -> dict:
    """A Jetstream commit event creating a post; `tags` become #tag facets over the text's bytes."""
    facets = []
    raw = text.encode()
    for tag in tags:
        start = raw.find(("#" + tag).encode())
        index = {"byteStart": max(start, 0), "byteEnd": max(start, 0) + len(("#" + tag).encode())}
        facets.append(
            {
                "$type": "app.bsky.richtext.facet",
                "index": index,
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
            }
        )
    record = {"$type": "app.bsky.feed.post", "createdAt": created, "text": text}
    if langs is not None:
        record["langs"] = langs
    if facets:
        record["facets"] = facets
    return {
        "did": did,
        "time_us": 1725911162329308 + n,
        "kind": "commit",
        "commit": {
            "rev": f"3l3qo2vutsw{n:02d}",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": f"3l3qo2vuowo{n:02d}",
            "record": record,
            "cid": f"bafyreidummy{n:04d}",
        },
    }


IDENTITY_EVENT = {
    "did": "did:plc:testuser",
    "time_us": 1725911162000000,
    "kind": "identity",
    "identity": {"did": "did:plc:testuser", "handle": "test.bsky.social", "seq": 1, "time": "2024-09-09T19:46:02.102Z"},
}


# ---------------------------------------------------------------- X API v2


@dataclass
class Connection:
    """What one stream connection does: a status with a body, or 200 and frames, then an ending:
    'end' (clean end of the chunked body), 'abort' (the socket closes mid-stream), 'hold' (keep-alives)
    or 'silent' (nothing)."""

    status: int = 200
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)
    ending: str = "end"


class MockX:
    """X API v2: stream rules (GET/POST), the filtered stream, recent search."""

    def __init__(self, stream: list[Connection] = (), search_pages: list = (), token: str = "test-token"):
        self.stream_script = list(stream)
        self.search_script = list(search_pages)  # dicts (200 JSON bodies), (status, body, headers) or raw bytes
        self.token = token
        self.rules: dict[str, dict] = {}
        self.next_rule_id = 1
        self.rule_posts: list[dict] = []
        self.requests: list[tuple[str, str, dict]] = []  # method, path with query, headers
        self.stream_connections = 0
        self.stop = threading.Event()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                mock.requests.append(("GET", self.path, dict(self.headers)))
                if not mock._authorized(self):
                    return
                path = urlsplit(self.path).path
                if path == "/2/tweets/search/stream/rules":
                    mock._json(
                        self,
                        200,
                        {"data": list(mock.rules.values()), "meta": {"sent": "now", "result_count": len(mock.rules)}}
                        if mock.rules
                        else {"meta": {"sent": "now", "result_count": 0}},
                    )
                elif path == "/2/tweets/search/stream":
                    mock._stream(self)
                elif path == "/2/tweets/search/recent":
                    mock._search(self)
                else:
                    mock._json(self, 404, {"title": "Not Found Error"})

            def do_POST(self):
                mock.requests.append(("POST", self.path, dict(self.headers)))
                if not mock._authorized(self):
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mock.rule_posts.append(body)
                if "add" in body:
                    created = []
                    for rule in body["add"]:
                        rid = str(1500000000000000000 + mock.next_rule_id)
                        mock.next_rule_id += 1
                        mock.rules[rid] = {
                            "id": rid,
                            "value": rule["value"],
                            **({"tag": rule["tag"]} if "tag" in rule else {}),
                        }
                        created.append(mock.rules[rid])
                    mock._json(
                        self,
                        201,
                        {
                            "data": created,
                            "meta": {
                                "sent": "now",
                                "summary": {
                                    "created": len(created),
                                    "not_created": 0,
                                    "valid": len(created),
                                    "invalid": 0,
                                },
                            },
                        },
                    )
                else:
                    ids = body["delete"]["ids"]
                    for rid in ids:
                        mock.rules.pop(rid, None)
                    mock._json(self, 200, {"meta": {"sent": "now", "summary": {"deleted": len(ids), "not_deleted": 0}}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> MockX:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            self._json(
                h, 401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
            )
            return False
        return True

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, body: object, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _stream(self, h: BaseHTTPRequestHandler) -> None:
        self.stream_connections += 1
        conn = self.stream_script.pop(0) if self.stream_script else Connection(ending="hold")
        if conn.status != 200:
            self._json(h, conn.status, conn.body or {}, conn.headers)
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(data: bytes) -> None:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        try:
            chunk(b"\r\n")  # a keep-alive first, as X does
            for frame in conn.frames:
                chunk(frame + b"\r\n")
            if conn.ending == "end":
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            elif conn.ending == "abort":
                h.wfile.write(b'1000\r\n{"data": {"id"')  # a chunk cut short
                h.wfile.flush()
            elif conn.ending == "silent":  # connected, then nothing at all (X sends a keep-alive every 20 s)
                self.stop.wait()
            else:
                while not self.stop.is_set():
                    chunk(b"\r\n")
                    time.sleep(0.05)
        except OSError:
            pass
        h.close_connection = True

    def _search(self, h: BaseHTTPRequestHandler) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(h.path).query).items()}
        page = self.search_script.pop(0) if self.search_script else {"meta": {"result_count": 0}}
        if callable(page):
            page = page(query)
        if isinstance(page, bytes):
            self._json(h, 200, page)
        elif isinstance(page, tuple):
            self._json(h, *page)
        else:
            self._json(h, 200, page)

    def stream_requests(self) -> list[str]:
        return [p for m, p, _ in self.requests if m == "GET" and urlsplit(p).path == "/2/tweets/search/stream"]


# ---------------------------------------------------------------- Bluesky Jetstream


@dataclass
class Session:
    """One Jetstream connection: refuse the handshake with `status`, or send frames then end:
    'abort' (the TCP connection drops), 'close' (close frame 1011) or 'hold'."""

    status: int = 101
    headers: dict = field(default_factory=dict)
    frames: list[str | bytes] = field(default_factory=list)
    ending: str = "hold"


class MockJetstream:
    def __init__(self, sessions: list[Session]):
        self.script = list(sessions)
        self.paths: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    def __enter__(self) -> MockJetstream:
        self.thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self.thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = self._loop.create_future()
        current: dict[int, Session] = {}

        def process_request(connection, request):
            self.paths.append(request.path)
            session = self.script.pop(0) if self.script else Session()
            current[id(connection)] = session
            if session.status != 101:
                body = b"Too Many Requests" if session.status == 429 else b"error"
                return Response(session.status, "refused", Headers(session.headers), body)
            return None

        async def handler(ws):
            session = current.pop(id(ws))
            for frame in session.frames:
                await ws.send(frame)
            if session.ending == "abort":
                ws.transport.abort()
            elif session.ending == "close":
                await ws.close(1011, "upstream went away")
            else:
                await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop
