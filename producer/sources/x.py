"""X API v2 through tweepy: the filtered stream (rules from keywords and languages,
synced idempotently) and recent-search polling (for access tiers without the stream).

The bearer token comes from the environment (X_BEARER_TOKEN); it is masked in every
log record while a source runs. `x_api_url` points tweepy at another host (a mock
server in the tests, a gateway): tweepy's hosts are fixed, so the requests session
it uses gets a transport adapter that rewrites https://api.twitter.com to that URL.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter

from ..config import ProducerSettings
from ..post import Rejected, check_unicode, parse_json, post_from_tweet
from .live import Drop, LiveSource, SourceError

log = logging.getLogger("producer")

X_HOST = "https://api.twitter.com"
TWEET_FIELDS = ["created_at", "lang", "author_id"]
MAX_RULE_LENGTH = 512  # the Basic and Pro tiers' rule length
PREVIEW = 10_000  # the beginning of an oversize frame or page kept for the rejects file


# ---------------------------------------------------------------- rules


def _term(keyword: str) -> str:
    """A keyword as an X query term: quoted unless it is a plain word (quoted: exact phrase, `COVID-19`)."""
    keyword = keyword.strip()
    if re.fullmatch(r"[#@$]?\w+", keyword):
        return keyword
    return '"' + keyword.replace('"', "") + '"'


def build_rules(keywords: Iterable[str], languages: Iterable[str], max_length: int = MAX_RULE_LENGTH) -> list[str]:
    """Rules (also recent-search queries) matching any keyword in any of the languages:
    `(covid OR vaccin OR "COVID-19" OR "corona virus") lang:fr`. Keywords that do not fit
    one rule go to further rules."""
    terms = [_term(k) for k in dict.fromkeys(keywords) if k.strip()]
    if not terms:
        raise SourceError("the X API needs at least one keyword (lang: alone is not a valid rule)")
    langs = [lang.strip() for lang in languages if lang.strip()]
    suffix = ""
    if len(langs) == 1:
        suffix = f" lang:{langs[0]}"
    elif langs:
        suffix = " (" + " OR ".join(f"lang:{lang}" for lang in langs) + ")"
    rules: list[str] = []
    group: list[str] = []

    def rule(group: list[str]) -> str:
        body = group[0] if len(group) == 1 else "(" + " OR ".join(group) + ")"
        return body + suffix

    for term in terms:
        if group and len(rule([*group, term])) > max_length:
            rules.append(rule(group))
            group = []
        group.append(term)
        if len(rule(group)) > max_length:
            raise SourceError(f"keyword {term} makes a rule longer than {max_length} characters")
    rules.append(rule(group))
    return rules


# ---------------------------------------------------------------- tweepy plumbing


class _Redirect(HTTPAdapter):
    """Sends requests for https://api.twitter.com to another base URL."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        request.url = self.base_url + request.url[len(X_HOST) :]
        return super().send(request, **kwargs)


def _point_at(session: requests.Session, api_url: str) -> None:
    if api_url.rstrip("/") != X_HOST:
        session.mount(X_HOST, _Redirect(api_url))
        session.trust_env = False  # no proxy from the environment for an explicit host


class _Redact(logging.Filter):
    """Masks a secret in every record passing through a handler."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), ()
        return True


def _token(settings: ProducerSettings) -> str:
    if settings.x_bearer_token is None or not settings.x_bearer_token.get_secret_value():
        raise SourceError("no X API bearer token: set X_BEARER_TOKEN in the environment")
    return settings.x_bearer_token.get_secret_value()


def _problem(body: str | bytes) -> str:
    """The X API's problem document (title, detail, reason) in one line; the body's start if it is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        doc = parse_json(body)
    except Rejected:
        doc = None
    return (_describe(doc) if isinstance(doc, dict) else "") or body.strip()[:300]


def _describe(doc: dict) -> str:
    if isinstance(doc.get("errors"), list) and doc["errors"] and isinstance(doc["errors"][0], dict):
        doc = {**doc["errors"][0], **doc}
    parts = [
        str(doc[k])[:300]
        for k in ("title", "reason", "connection_issue", "detail", "message")
        if isinstance(doc.get(k), (str, int))
    ]
    return ": ".join(dict.fromkeys(parts))


def _dump(value: object) -> str:
    """A decoded value as JSON text for the rejects file (ASCII: a lone surrogate comes out as \\ud800)."""
    try:
        return json.dumps(value)
    except (RecursionError, ValueError, TypeError):
        return f"<{type(value).__name__} that cannot be written as JSON>"


class TooLarge(Exception):
    """A response body over the limit: its first bytes, and how much was read before giving up."""

    def __init__(self, limit: int, preview: bytes, size: int):
        super().__init__(f"response over {limit} bytes")
        self.limit, self.preview, self.size = limit, preview, size


def read_bounded(response: requests.Response, limit: int) -> bytes:
    """The body of a response, read at most limit + 1 bytes (then the connection is closed: TooLarge).
    It becomes the response's content, so requests and tweepy read it from memory as usual."""
    body = bytearray()
    for chunk in response.iter_content(1 << 16):
        body += chunk
        if len(body) > limit:
            response.close()
            raise TooLarge(limit, bytes(body[:PREVIEW]), len(body))
    response._content = bytes(body)  # requests' own cache of the body (read by .content, .text, .json())
    return response._content


class OversizeLine(bytes):
    """The beginning of a stream line over the limit (the rest was read and dropped); `size`: its length."""

    size: int


def bounded_lines(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Lines of a stream (without their \\r\\n), none held past limit + 1 bytes: a longer one comes out as
    an `OversizeLine` (its first PREVIEW bytes and its size), the rest dropped as it comes."""
    line = bytearray()
    over: OversizeLine | None = None  # the line being dropped
    last = b""  # the last byte of it seen (a \\r before the \\n is not part of the line)
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        for i, piece in enumerate(pieces):
            if over is None:
                line += piece
                if len(line) > limit + 1:
                    over = OversizeLine(line[:PREVIEW])
                    over.size, last = len(line), line[-1:]
                    line.clear()
            else:
                over.size += len(piece)
                last = piece[-1:] or last
            if i == len(pieces) - 1:  # the line goes on in the next chunk
                continue
            if over is not None:
                if last == b"\r":
                    over.size -= 1
                yield over
                over = None
            else:
                yield bytes(line[:-1] if line.endswith(b"\r") else line)
                line.clear()
    if over is not None:
        yield over
    elif line:
        yield bytes(line)


def _retry_after(headers) -> float | None:  # noqa: ANN001 - a requests CaseInsensitiveDict
    reset = headers.get("x-rate-limit-reset")
    if reset and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    after = headers.get("retry-after")
    return float(after) if after and after.replace(".", "", 1).isdigit() else None


def _http_drop(status: int, body: str, headers) -> Drop:  # noqa: ANN001
    problem = _problem(body)
    if status in (420, 429):
        return Drop("rate_limit", f"HTTP {status} {problem}", retry_after=_retry_after(headers))
    if status >= 500:
        return Drop("http", f"HTTP {status} {problem}")
    hint = {
        401: " (is X_BEARER_TOKEN right?)",
        403: " (the filtered stream needs an access tier that includes it; try `x-search`)",
    }.get(status, "")
    return Drop("http", f"HTTP {status} {problem}{hint}", retryable=False)


class _XSource(LiveSource):
    def __init__(self, settings: ProducerSettings, origin: str):
        super().__init__(settings, origin)
        self._token = _token(settings)
        self.secrets = (self._token,)
        self._redact = _Redact(self._token)
        self.rules = build_rules(settings.keywords, settings.languages)

    def serve(self) -> None:
        # tweepy logs request headers (the token) at DEBUG: keep its loggers at INFO or above
        tweepy_log = logging.getLogger("tweepy")
        tweepy_log.setLevel(max(tweepy_log.getEffectiveLevel(), logging.INFO))
        handlers = logging.getLogger().handlers
        for h in handlers:
            h.addFilter(self._redact)
        try:
            self.serve_x()
        finally:
            for h in handlers:
                h.removeFilter(self._redact)

    def serve_x(self) -> None:
        raise NotImplementedError

    def tweet(self, data: object, raw: bytes | None = None) -> None:
        """One tweet object; `raw`, the input it came in, for the rejects file (default: the tweet as JSON)."""
        try:
            post = post_from_tweet(data, source="x", max_text_bytes=self.settings.max_text_bytes)
        except Rejected as e:
            self.reject(str(e), _dump(data) if raw is None else raw)
            return
        self.emit(post)


# ---------------------------------------------------------------- filtered stream


class _StreamingClient(tweepy.StreamingClient):
    """tweepy's stream loop, with reconnect decisions handed to the source (which backs off with tenacity):
    every way a connection ends disconnects tweepy's loop and records why."""

    def __init__(self, source: XStreamSource, token: str):
        super().__init__(token, wait_on_rate_limit=False, max_retries=0)
        self.source = source
        self.drop: Drop | None = None
        self.response: requests.Response | None = None
        self.error_response: tuple[int, str, object] | None = None
        _point_at(self.session, source.settings.x_api_url)
        self.session.hooks["response"].append(self._keep_response)

    def _keep_response(self, response: requests.Response, *args, **kwargs) -> None:
        if response.request.method == "GET" and urlsplit(response.request.url).path.endswith("/2/tweets/search/stream"):
            self.response = response
            limit = self.source.settings.max_frame_bytes
            if response.status_code != 200:  # read the error body before tweepy drops it (not past the limit)
                try:
                    body = read_bounded(response, limit)
                except TooLarge as e:
                    body = e.preview
                    response._content = body
                self.error_response = (response.status_code, body.decode("utf-8", errors="replace"), response.headers)
            else:  # tweepy reads the stream with iter_lines: lines are held at most max_frame_bytes
                response.iter_lines = lambda chunk_size=512, **kw: bounded_lines(
                    response.iter_content(chunk_size), limit
                )

    def on_connect(self) -> None:
        self.source.connected()

    def on_data(self, raw_data: bytes) -> None:
        self.source.frame(raw_data)

    def on_request_error(self, status_code: int) -> None:
        status, body, headers = self.error_response or (status_code, "", {})
        self.drop = _http_drop(status, body, headers)
        self.disconnect()

    def on_connection_error(self) -> None:
        self.drop = Drop("network", "connection error or timeout")
        self.disconnect()

    def on_closed(self, response: requests.Response) -> None:
        self.drop = Drop("network", self.source.disconnect_reason or "stream closed by the server")
        self.disconnect()

    def on_exception(self, exception: Exception) -> None:
        self.drop = Drop("network", f"stream failed: {exception!r}")

    def on_disconnect(self) -> None:
        pass


class XStreamSource(_XSource):
    """The filtered stream: sync the rules (tagged `x_rule_tag`), then stream and reconnect."""

    name = "x"

    def __init__(self, settings: ProducerSettings):
        super().__init__(settings, f"{settings.x_api_url.rstrip('/')}/2/tweets/search/stream")
        self.client: _StreamingClient | None = None
        self.rule_ids: set[str] = set()
        self.disconnect_reason = ""

    def sync_rules(self, client: tweepy.StreamingClient) -> tuple[int, int]:
        """Make the rules tagged x_rule_tag exactly `self.rules`; returns (added, deleted).
        Rules with other tags are left alone (their matches are skipped)."""
        tag = self.settings.x_rule_tag
        current = client.get_rules().data or []
        ours = [r for r in current if r.tag == tag]
        for r in current:
            if r.tag != tag:
                log.warning(
                    "x: the stream also has rule %r (tag %r), not ours: its matches are skipped", r.value, r.tag
                )
        wanted = set(self.rules)
        stale = [r.id for r in ours if r.value not in wanted]
        have = {r.value for r in ours}
        missing = [tweepy.StreamRule(value=v, tag=tag) for v in self.rules if v not in have]
        if stale:
            client.delete_rules(stale)
        if missing:
            response = client.add_rules(missing)
            invalid = [e for e in response.errors if isinstance(e, dict)]
            if invalid:
                raise SourceError(f"x: rules refused: {invalid}")
        self.rule_ids = {r.id for r in (client.get_rules().data or []) if r.tag == tag}
        log.info("x: stream rules %s (added %d, deleted %d)", self.rules, len(missing), len(stale))
        return len(missing), len(stale)

    def serve_x(self) -> None:
        self.client = client = _StreamingClient(self, self._token)
        for attempt in self.retrying():
            with attempt:
                try:
                    self.sync_rules(client)
                except tweepy.TooManyRequests as e:
                    raise Drop("rate_limit", f"rules: {e}", retry_after=_retry_after(e.response.headers)) from None
                except tweepy.TwitterServerError as e:
                    raise Drop("http", f"rules: {e}") from None
                except tweepy.HTTPException as e:
                    raise SourceError(f"x: the rules API refused: {e}".replace("\n", " ")) from None
                except (RecursionError, ValueError) as e:  # tweepy could not read the body (too deep, huge numbers)
                    raise Drop("http", f"rules: unreadable response ({type(e).__name__})") from None
                except requests.RequestException as e:
                    raise Drop("network", f"rules: {e}") from None
        for attempt in self.retrying():
            with attempt:
                if self.stopping.is_set():
                    return
                client.drop, client.error_response, self.disconnect_reason = None, None, ""
                client.filter(tweet_fields=TWEET_FIELDS)
                if self.stopping.is_set():
                    return
                drop = client.drop or Drop("network", "stream ended")
                if not drop.retryable:
                    raise SourceError(f"x: the stream refused: {drop.reason}")
                raise drop

    def connected(self) -> None:
        self.backoff.opened()
        log.info("x: stream connected")

    def frame(self, raw: bytes) -> None:
        self.frames += 1
        size = raw.size if type(raw) is OversizeLine else len(raw)
        if size > self.settings.max_frame_bytes:
            self.reject(f"frame too large: {size} bytes (limit {self.settings.max_frame_bytes})", raw[:PREVIEW], size)
            return
        try:
            message = parse_json(raw)
        except Rejected as e:
            self.reject(str(e), raw)
            return
        if not isinstance(message, dict):
            self.reject("not a JSON object", raw)
            return
        if "data" not in message:
            errors = message.get("errors")
            if errors:  # e.g. operational-disconnect, sent just before the server closes the stream
                self.disconnect_reason = _describe(message) or raw.decode("utf-8", errors="replace").strip()[:300]
                log.warning("x: stream message: %s", self.disconnect_reason)
            else:
                self.reject("missing field: data", raw)
            return
        rules = message.get("matching_rules")
        if (
            isinstance(rules, list)
            and rules
            and self.rule_ids
            and not any(
                isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"] in self.rule_ids for r in rules
            )
        ):
            self.stats.skipped += 1
            return
        self.tweet(message["data"], raw)

    def interrupt(self) -> None:
        client = self.client
        if client is None:
            return
        client.disconnect()
        response = client.response
        if response is not None and response.raw is not None and response.raw.connection is not None:
            sock = getattr(response.raw.connection, "sock", None)
            if sock is not None:
                import socket

                try:  # wakes the thread blocked in recv()
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ---------------------------------------------------------------- recent search


def _id(value: object) -> str | None:
    """An id or token of the API's `meta`, if it is one (anything else would be sent back in the next query)."""
    return value if isinstance(value, str) and value and len(value) <= 100 and value.isprintable() else None


class XSearchSource(_XSource):
    """Recent search, polled: each rule is a query; only tweets newer than the last seen (since_id)."""

    name = "x-search"

    def __init__(self, settings: ProducerSettings):
        super().__init__(settings, f"{settings.x_api_url.rstrip('/')}/2/tweets/search/recent")
        self.since_id: dict[str, str] = {}
        self.polls = 0
        self.body = b""  # the last response's body (bounded), for the rejects file

    def serve_x(self) -> None:
        client = tweepy.Client(self._token, return_type=dict, wait_on_rate_limit=False)
        _point_at(client.session, self.settings.x_api_url)
        client.session.hooks["response"].append(self._read_body)
        while not self.stopping.is_set():
            for query in self.rules:
                for attempt in self.retrying():
                    with attempt:
                        if not self.stopping.is_set():
                            self.poll(client, query)
            self.polls += 1
            self.stopping.wait(self.settings.x_poll_interval_s)

    def _read_body(self, response: requests.Response, *args, **kwargs) -> None:
        """Every response's body, read before tweepy sees it: not past max_frame_bytes, and kept for the
        rejects file if it cannot be read."""
        self.body = b""
        self.body = read_bounded(response, self.settings.max_frame_bytes)

    def _unreadable(self, error: Exception) -> Drop:
        """tweepy could not read the body: a reject saying why (in the words of every source), and a retry."""
        try:
            parse_json(self.body)
            too_deep = isinstance(error, RecursionError)
            reason = "invalid JSON: nested too deeply" if too_deep else f"invalid JSON: {error}"
        except Rejected as e:
            reason = str(e)
        self.reject(reason, self.body)
        return Drop("http", "malformed response")

    def poll(self, client: tweepy.Client, query: str) -> None:
        """One query, newest first, page by page, then sent oldest first."""
        tweets: list[object] = []
        newest: str | None = None
        token: str | None = None
        since = self.since_id.get(query)
        for _ in range(self.settings.x_max_pages):
            self.frames += 1
            try:
                page = client.search_recent_tweets(
                    query, max_results=100, tweet_fields=TWEET_FIELDS, since_id=since, next_token=token
                )
            except tweepy.TooManyRequests as e:
                raise Drop(
                    "rate_limit", f"HTTP 429 {e}".replace("\n", " "), retry_after=_retry_after(e.response.headers)
                ) from None
            except tweepy.TwitterServerError as e:
                raise Drop("http", str(e).replace("\n", " ")) from None
            except tweepy.HTTPException as e:
                raise SourceError(f"x: recent search refused: {e}".replace("\n", " ")) from None
            except TooLarge as e:
                self.reject(f"page too large: over {e.limit} bytes", e.preview, e.size)
                raise Drop("http", "response too large") from None
            except (RecursionError, ValueError) as e:  # requests.JSONDecodeError, too deep, an integer too long
                raise self._unreadable(e) from None
            except requests.RequestException as e:
                raise Drop("network", str(e)) from None
            if not isinstance(page, dict):
                self.reject("not a JSON object", self.body)
                raise Drop("http", "malformed response")
            meta = page.get("meta") if isinstance(page.get("meta"), dict) else {}
            newest = newest or _id(meta.get("newest_id"))
            data = page.get("data") or []
            if not isinstance(data, list):
                self.reject("data is not a list", self.body)
                data = []
            tweets += data
            token = _id(meta.get("next_token"))
            if not token or since is None:  # the first poll takes one page: the most recent, not 7 days
                break
        for tweet in reversed(tweets):
            try:  # the page was read by the standard library, which keeps lone surrogates: one tweet, one reject
                check_unicode(tweet)
            except Rejected as e:
                self.reject(str(e), _dump(tweet))
                continue
            self.tweet(tweet)
        if newest:
            self.since_id[query] = newest
        self.backoff.reset()
        log.info(
            "x-search: %d tweets for %s at %s",
            len(tweets),
            query,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
