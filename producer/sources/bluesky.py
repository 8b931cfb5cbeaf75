"""Bluesky through Jetstream: a public websocket of the network's events, JSON, no account.

Posts (commits creating app.bsky.feed.post records) are kept when they match a
keyword and a language, and become the same Post as every other source:
id at://DID/app.bsky.feed.post/RKEY, the author's DID, the first matching language.
Hashtags are the ones in the text; tags given only as facets (or the record's
`tags`) are appended to the text as #tag so the pipeline counts them too.
The event time is the record's createdAt, or Jetstream's time_us when createdAt is
missing, unreadable or more than 5 minutes ahead of time_us.
On a reconnect, the stream resumes from the last event seen (Jetstream's cursor).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from ..config import ProducerSettings
from ..post import Rejected, epoch_millis, make_post, parse_json
from .live import Drop, LiveSource, SourceError

log = logging.getLogger("producer")

POST_COLLECTION = "app.bsky.feed.post"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
# a hashtag in the text, as the pipeline counts them (a # not after a letter, digit or _; a run with a letter)
_HASHTAG = re.compile(r"(?<![^\W_])(?<!_)#(\w*[^\W\d_]\w*)")
_WORD_RUN = re.compile(r"\w+")
# a createdAt further ahead of Jetstream's time_us than this is a wrong clock: the event time is time_us
MAX_AHEAD_MS = 5 * 60 * 1000
# a frame over the websocket's max_size closes the connection (1009) before anyone sees it, so Jetstream would
# send it again from the cursor: the cursor moves on this much (1 s of events) to get past it
OVERSIZE_SKIP_US = 1_000_000
PREVIEW = 10_000  # the beginning of an oversize frame kept for the rejects file


def keyword_matcher(keywords: Iterable[str]) -> Callable[[str], bool]:
    """Case-insensitive match of any keyword at the start of a word (`vaccin` matches `Vaccins`
    and `#vaccin`, not `antivaccin`); a phrase matches across any white space. No keywords: all match."""
    patterns = [r"\s+".join(map(re.escape, k.casefold().split())) for k in keywords if k.strip()]
    if not patterns:
        return lambda text: True
    rx = re.compile(r"(?<![^\W_])(?:" + "|".join(patterns) + ")")
    return lambda text: rx.search(text.casefold()) is not None


def language_picker(languages: Iterable[str]) -> Callable[[object], str | None | bool]:
    """The post's language tag to keep (False: the post is filtered out). Matches primary subtags: fr matches fr-CA."""
    wanted = {lang.strip().lower() for lang in languages if lang.strip()}

    def pick(langs: object) -> str | None | bool:
        tags = [t for t in langs if isinstance(t, str)] if isinstance(langs, list) else []
        if not wanted:
            return tags[0] if tags else None
        for tag in tags:
            if tag.split("-", 1)[0].lower() in wanted:
                return tag
        return False

    return pick


def facet_tags(record: dict) -> list[str]:
    """Hashtags given as rich-text facets, then the record's own `tags`."""
    tags: list[str] = []
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else []:
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features if isinstance(features, list) else []:
            if (
                isinstance(feature, dict)
                and feature.get("$type") == TAG_FEATURE
                and isinstance(feature.get("tag"), str)
            ):
                tags.append(feature["tag"])
    extra = record.get("tags")
    tags += [t for t in extra if isinstance(t, str)] if isinstance(extra, list) else []
    return tags


def with_tags(text: str, tags: Iterable[str]) -> str:
    """The text, with each tag not already a hashtag of it appended as ` #tag`."""
    present = {m.group(1).lower() for m in _HASHTAG.finditer(text)}
    for tag in tags:
        tag = tag.lstrip("#")
        run = _WORD_RUN.match(tag)
        if run is None or not re.search(r"[^\W\d_]", run.group()):
            continue  # not something the pipeline would count as a hashtag
        if run.group().lower() not in present:
            present.add(run.group().lower())
            text += " #" + tag
    return text


def event_time(created_at: object, time_us: int | None) -> int | None:
    """Epoch ms of a post: its createdAt, or Jetstream's time_us (when the event reached Jetstream) if createdAt
    is missing, unreadable or more than MAX_AHEAD_MS ahead of time_us; None if neither is known."""
    created = epoch_millis(created_at)
    if time_us is not None and (created is None or created > time_us // 1000 + MAX_AHEAD_MS):
        return time_us // 1000
    return created


def with_query(url: str, **params: object) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit(parts._replace(query=urlencode(query)))


class BlueskySource(LiveSource):
    name = "bluesky"

    def __init__(self, settings: ProducerSettings):
        super().__init__(settings, settings.bluesky_url)
        self.matches = keyword_matcher(settings.keywords)
        self.pick_language = language_picker(settings.languages)
        self.cursor: int | None = None  # time_us of the last event seen

    def url(self) -> str:
        return with_query(self.settings.bluesky_url, wantedCollections=POST_COLLECTION, cursor=self.cursor)

    def serve(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        for attempt in self.retrying():
            with attempt:
                if not self.stopping.is_set():
                    await self._connect_once()

    async def _connect_once(self) -> None:
        url = self.url()
        max_size = 4 * self.settings.max_frame_bytes  # a text frame of max_frame_bytes characters, in UTF-8
        try:
            async with connect(
                url,
                open_timeout=10,
                max_size=max_size,
                user_agent_header=f"tweetstream-producer websockets/{websockets.__version__}",
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            ) as ws:
                self.backoff.opened()
                log.info("bluesky: connected to %s", url)
                last_frame = time.monotonic()
                while not self.stopping.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(), timeout=0.5)
                    except TimeoutError:
                        if time.monotonic() - last_frame > self.settings.stall_timeout_s:
                            raise Drop("network", f"no message for {self.settings.stall_timeout_s:g}s") from None
                        continue
                    last_frame = time.monotonic()
                    self.event(message)
        except ConnectionClosed as e:
            if e.sent is not None and e.sent.code == CloseCode.MESSAGE_TOO_BIG:  # websockets refused a frame
                self.frames += 1
                self.reject(f"frame too large: over {max_size} bytes (limit {self.settings.max_frame_bytes})", "")
                if self.cursor is not None:
                    self.cursor += OVERSIZE_SKIP_US
                    log.warning(
                        "bluesky: a frame over %d bytes closed the connection; resuming %gs of events "
                        "later to get past it",
                        max_size,
                        OVERSIZE_SKIP_US / 1e6,
                    )
                raise Drop("network", "frame too large (1009)") from None
            code = e.rcvd.code if e.rcvd is not None else 1006
            raise Drop("network", f"connection closed ({code})") from None
        except InvalidStatus as e:
            status = e.response.status_code
            if status == 429:
                after = e.response.headers.get("Retry-After")
                raise Drop(
                    "rate_limit", "HTTP 429", retry_after=float(after) if after and after.isdigit() else None
                ) from None
            if status >= 500 or status == 408:
                raise Drop("http", f"HTTP {status}") from None
            raise SourceError(f"bluesky: {url} refused the websocket: HTTP {status}") from None
        except InvalidURI as e:
            raise SourceError(f"bluesky: bad URL {url}: {e}") from None
        except (OSError, TimeoutError, InvalidHandshake) as e:
            raise Drop("network", f"cannot connect: {e}") from None

    def event(self, message: str | bytes) -> None:
        """One Jetstream message: a post to send, a reject, or something skipped."""
        self.frames += 1
        limit = self.settings.max_frame_bytes
        size = len(message)
        if size * 4 > limit and isinstance(message, str):  # a large one: its size in bytes
            size = len(message.encode("utf-8", "surrogatepass"))
        if size > limit:
            self.reject(f"frame too large: {size} bytes (limit {limit})", message[:PREVIEW], size)
            return
        if isinstance(message, bytes):
            self.reject("binary frame (expected JSON text)", message)
            return
        try:
            event = parse_json(message)
        except Rejected as e:
            self.reject(str(e), message)
            return
        if not isinstance(event, dict):
            self.reject("not a JSON object", message)
            return
        time_us = event.get("time_us")
        if type(time_us) is not int or not 0 < time_us < 2**63:  # noqa: E721 - not a bool either
            time_us = None
        if time_us is not None:
            self.cursor = time_us
        commit = event.get("commit")
        if (
            event.get("kind") != "commit"
            or not isinstance(commit, dict)
            or commit.get("collection") != POST_COLLECTION
            or commit.get("operation") != "create"
        ):
            self.stats.skipped += 1  # identity and account events, deletes, likes...
            return
        record, did, rkey = commit.get("record"), event.get("did"), commit.get("rkey")
        for field, value in (("record", record), ("did", did), ("rkey", rkey)):
            if not value or not isinstance(value, dict if field == "record" else str):
                self.reject(f"missing field: {field}", message)
                return
        text = record.get("text")
        if not isinstance(text, str):
            self.reject("missing field: text", message)
            return
        lang = self.pick_language(record.get("langs"))
        text = with_tags(text, facet_tags(record))
        if lang is False or not self.matches(text):
            self.stats.skipped += 1
            return
        created = event_time(record.get("createdAt"), time_us)
        try:
            post = make_post(
                f"at://{did}/{POST_COLLECTION}/{rkey}",
                text,
                created,
                did,
                lang,
                source="bluesky",
                max_text_bytes=self.settings.max_text_bytes,
            )
        except Rejected as e:
            self.reject(str(e), message)
            return
        self.emit(post)
