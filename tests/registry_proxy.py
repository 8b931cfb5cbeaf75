"""A proxy in front of the real schema registry that can hold chosen requests.

Every request is passed on to the registry and its answer passed back, except
those matching a rule set with `hold`: until the rule ends, such a request gets
no answer at all (`"silent"`: the client waits for its read time-out, or for
ever without one), or an answer that never finishes (`"trickle"`: a byte of a
header every two seconds, which no read time-out catches). When the rule ends
the held connections are closed without an answer.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Rule:
    method: str
    path: re.Pattern
    until: float
    mode: str  # silent | trickle


class RegistryProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.held: list[str] = []  # "METHOD path" of every request held
        self.seen: list[str] = []  # of every request
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = f"{self.command} {self.path}"
                with proxy._lock:
                    proxy.seen.append(request)
                rule = proxy._rule(self.command, self.path)
                if rule:
                    with proxy._lock:
                        proxy.held.append(request)
                    self._hold(rule)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")
                }
                answer = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
                )
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _hold(self, rule: Rule):
                try:
                    if rule.mode == "trickle":
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Wait: ")
                    while time.time() < rule.until and not proxy._closed.is_set():
                        if rule.mode == "trickle":
                            self.wfile.write(b"w")
                            self.wfile.flush()
                        time.sleep(2)
                except OSError:
                    pass
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self._closed = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def hold(self, method: str, path_regex: str, seconds: float, mode: str = "silent") -> None:
        with self._lock:
            self.rules.append(Rule(method, re.compile(path_regex), time.time() + seconds, mode))

    def release(self) -> None:
        with self._lock:
            self.rules.clear()

    def _rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            return next(
                (r for r in self.rules if r.method == method and r.path.search(path) and time.time() < r.until), None
            )

    def close(self) -> None:
        self._closed.set()
        self.server.shutdown()
        self.server.server_close()
