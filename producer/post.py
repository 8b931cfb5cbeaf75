"""From raw input to the Avro record of schemas/post.avsc (one place for every source)."""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime


class Rejected(ValueError):
    """An input record that cannot become a post; the message says why."""


def clean_text(text: str) -> str:
    """Unicode NFC (so decomposed accents count like composed ones), without NUL (PostgreSQL refuses it)."""
    return unicodedata.normalize("NFC", text).replace("\x00", "")


def epoch_millis(created_at: object) -> int | None:
    """ISO 8601 (X API: 2021-03-01T12:00:00.000Z) to epoch milliseconds; None if absent or unreadable."""
    if not isinstance(created_at, str) or not created_at:
        return None
    try:
        dt = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:  # no offset given: UTC, as the X API means it
        from datetime import timezone

        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    text: str
    created_at: int
    author_id: str | None = None
    lang: str | None = None
    source: str = "replay"

    def to_record(self) -> dict:
        return {
            "id": self.id, "text": self.text, "created_at": self.created_at,
            "author_id": self.author_id, "lang": self.lang, "source": self.source,
        }


def post_from_tweet(obj: object, *, source: str = "replay", max_text_bytes: int = 100_000) -> Post:
    """An X API v2 tweet object (id, text, created_at, author_id, lang) to a Post."""
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object")
    post_id = obj.get("id")
    if isinstance(post_id, bool) or not isinstance(post_id, (str, int)) or str(post_id) == "":
        raise Rejected("missing field: id")
    text = obj.get("text")
    if not isinstance(text, str):
        raise Rejected("missing field: text")
    text = clean_text(text)
    if len(text.encode()) > max_text_bytes:
        raise Rejected(f"text too large: {len(text.encode())} bytes (limit {max_text_bytes})")
    created = epoch_millis(obj.get("created_at"))
    author = obj.get("author_id")
    lang = obj.get("lang")
    return Post(
        id=str(post_id),
        text=text,
        created_at=created if created is not None else int(time.time() * 1000),
        author_id=str(author) if author is not None else None,
        lang=lang if isinstance(lang, str) else None,
        source=source,
    )


def post_from_json_line(line: str, **kw) -> Post:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise Rejected(f"invalid JSON: {e.msg} (column {e.colno})") from None
    return post_from_tweet(obj, **kw)
