"""From raw input to the Avro record of schemas/post.avsc (one place for every source).

Every source ends in `make_post`, so every post leaving the producer has the same
guarantees: Unicode NFC text without NUL characters, a text size limit, an event
time in epoch milliseconds, and a reason (`Rejected`) for whatever cannot be a post.
"""

from __future__ import annotations

import json
import time
import unicodedata
from datetime import datetime, timezone
from typing import NamedTuple

import orjson


class Rejected(ValueError):
    """An input record that cannot become a post; the message says why."""

    @property
    def kind(self) -> str:
        """The reason without its details (`invalid JSON`, `missing field`, ...), for counting."""
        return str(self).split(":", 1)[0]


def clean_text(text: str) -> str:
    """Unicode NFC (so decomposed accents count like composed ones), without NUL (PostgreSQL refuses it)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.replace("\x00", "") if "\x00" in text else text


def epoch_millis(created_at: object) -> int | None:
    """ISO 8601 (X API: 2021-03-01T12:00:00.000Z) to epoch milliseconds; None if absent or unreadable."""
    if not isinstance(created_at, str) or not created_at:
        return None
    try:
        dt = datetime.fromisoformat(created_at)
    except ValueError:
        return None
    if dt.tzinfo is None:  # no offset given: UTC, as the X API means it
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


class Post(NamedTuple):
    """One post, in the shape of the Avro record (field names are the schema's)."""

    id: str
    text: str
    created_at: int
    author_id: str | None = None
    lang: str | None = None
    source: str = "replay"

    def to_record(self) -> dict:
        return self._asdict()


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    value = str(value)
    return value.replace("\x00", "") if "\x00" in value else value


def make_post(post_id: object, text: object, created_ms: int | None, author_id: object = None,
              lang: object = None, *, source: str, max_text_bytes: int = 100_000) -> Post:
    """The checks and cleaning every source goes through."""
    if type(post_id) is not str:  # noqa: E721 - the usual case first, fast
        if isinstance(post_id, bool) or not isinstance(post_id, int):
            raise Rejected("missing field: id")
        post_id = str(post_id)
    if not post_id:
        raise Rejected("missing field: id")
    if "\x00" in post_id:
        raise Rejected("invalid id: contains NUL")
    if type(text) is not str:  # noqa: E721
        raise Rejected("missing field: text")
    text = clean_text(text)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise Rejected("invalid text: not valid Unicode (lone surrogate)") from None
    if size > max_text_bytes:
        raise Rejected(f"text too large: {size} bytes (limit {max_text_bytes})")
    if type(author_id) is not str or "\x00" in author_id:  # noqa: E721
        author_id = _optional_str(author_id)
    if type(lang) is not str or "\x00" in lang:  # noqa: E721
        lang = _optional_str(lang) if isinstance(lang, str) else None
    return Post(post_id, text, created_ms if created_ms is not None else int(time.time() * 1000),
                author_id, lang, source)


def post_from_tweet(obj: object, *, source: str = "replay", max_text_bytes: int = 100_000) -> Post:
    """An X API v2 tweet object (id, text, created_at, author_id, lang) to a Post."""
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object")
    return make_post(obj.get("id"), obj.get("text"), epoch_millis(obj.get("created_at")), obj.get("author_id"),
                     obj.get("lang"), source=source, max_text_bytes=max_text_bytes)


def parse_json(line: str | bytes) -> object:
    """JSON text to a Python value, fast (orjson); errors are `Rejected` with the standard library's message."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = None
        fallback = True
    else:
        # orjson reads integers beyond 64 bits as floats: let the standard library keep them exact
        fallback = type(obj) is dict and type(obj.get("id")) is float
    if fallback:
        if isinstance(line, bytes):  # invalid UTF-8 is read with replacement characters
            line = line.decode("utf-8", errors="replace")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise Rejected(f"invalid JSON: {e.msg} (column {e.colno})") from None
    return obj


def post_from_json_line(line: str | bytes, **kw) -> Post:
    return post_from_tweet(parse_json(line), **kw)
