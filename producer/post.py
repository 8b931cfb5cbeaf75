"""From raw input to the Avro record of schemas/post.avsc (one place for every source).

Every source ends in `make_post`, so every post leaving the producer has the same
guarantees: Unicode NFC text without NUL characters, a text size limit, an event
time in epoch milliseconds, and a reason (`Rejected`) for whatever cannot be a post.
"""

from __future__ import annotations

import json
import re
import sys
import time
import unicodedata
from datetime import UTC, datetime
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
    except (ValueError, OverflowError):
        return None
    if dt.tzinfo is None:  # no offset given: UTC, as the X API means it
        dt = dt.replace(tzinfo=UTC)
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


def make_post(
    post_id: object,
    text: object,
    created_ms: int | None,
    author_id: object = None,
    lang: object = None,
    *,
    source: str,
    max_text_bytes: int = 100_000,
) -> Post:
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
    except UnicodeEncodeError:  # rejected, not repaired: see check_unicode
        raise Rejected("invalid text: lone surrogate") from None
    if size > max_text_bytes:
        raise Rejected(f"text too large: {size} bytes (limit {max_text_bytes})")
    if type(author_id) is not str or "\x00" in author_id:  # noqa: E721
        author_id = _optional_str(author_id)
    if type(lang) is not str or "\x00" in lang:  # noqa: E721
        lang = _optional_str(lang) if isinstance(lang, str) else None
    return Post(
        post_id, text, created_ms if created_ms is not None else int(time.time() * 1000), author_id, lang, source
    )


def post_from_tweet(obj: object, *, source: str = "replay", max_text_bytes: int = 100_000) -> Post:
    """An X API v2 tweet object (id, text, created_at, author_id, lang) to a Post."""
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object")
    return make_post(
        obj.get("id"),
        obj.get("text"),
        epoch_millis(obj.get("created_at")),
        obj.get("author_id"),
        obj.get("lang"),
        source=source,
        max_text_bytes=max_text_bytes,
    )


# orjson's nesting limit: a document nested deeper is refused before it costs anything
MAX_JSON_DEPTH = 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """`text` with lone surrogates written as escapes (`\\ud800`): encodable to UTF-8, so always printable and
    writable (a reason, a path, a label)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


def lone_surrogate_at(value: object) -> str | None:
    """Where the first string (or key) holding a lone surrogate is, as a path (`data.entities.hashtags[0].tag`),
    or None. JSON parsers pair escaped surrogates into one character, so any surrogate left is a lone one.
    Iterative (no recursion limit); each step links to its parent, so paths are only spelled out for the answer."""
    stack: list[tuple[object, tuple | None]] = [(value, None)]  # (value, (step, parent's link) or None)
    while stack:
        value, link = stack.pop()
        if type(value) is str:
            if _SURROGATE.search(value):
                return _path(link)
        elif type(value) is dict:
            for key, item in reversed(value.items()):
                if _SURROGATE.search(key):
                    return _path((key, link)) + " (a key)"
                stack.append((item, (key, link)))
        elif type(value) is list:
            stack.extend((item, (i, link)) for i, item in reversed(list(enumerate(value))))
    return None


def _path(link: tuple | None) -> str:
    steps = []
    while link is not None:
        step, link = link
        steps.append(f"[{step}]" if type(step) is int else f".{safe_text(step)[:100]}")
    return "".join(reversed(steps)).lstrip(".") or "(the document)"


def check_unicode(value: object) -> None:
    """Rejects a decoded document holding a lone surrogate anywhere (`\\ud800` alone is valid JSON syntax,
    but not a character: UTF-8 cannot encode it, so neither Avro, Flink nor PostgreSQL could take it).

    Rejected, not repaired: replacing it with U+FFFD would send a text the author did not write (and could
    change what a keyword or a hashtag matches) without anyone knowing; rejected, the input is kept whole
    in the rejects file, where it can be looked at."""
    try:  # the usual case, at C speed: nothing that UTF-8 cannot encode
        json.dumps(value, ensure_ascii=False).encode()
        return
    except (UnicodeEncodeError, RecursionError, ValueError):
        pass
    where = lone_surrogate_at(value)
    if where is not None:
        if where == "text" or where.endswith(".text"):
            raise Rejected("invalid text: lone surrogate")
        raise Rejected(f"invalid JSON: lone surrogate in {where}")


def _no_constant(name: str) -> object:
    raise Rejected(f"invalid JSON: {name} is not a JSON value")


def parse_json(line: str | bytes) -> object:
    """JSON text to a Python value, fast (orjson). Whatever the input, the only exception is `Rejected`:
    invalid UTF-8, invalid JSON (with the standard library's message), nesting deeper than MAX_JSON_DEPTH,
    an integer over Python's digit limit (4300), a lone surrogate anywhere."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return _parse_slowly(line, e)
    # orjson reads integers beyond 64 bits as floats: let the standard library keep them exact
    if type(obj) is dict and type(obj.get("id")) is float:
        return _parse_slowly(line, None)
    return obj


def _parse_slowly(line: str | bytes, error: orjson.JSONDecodeError | None) -> object:
    """What orjson refused (or read inexactly), through the standard library, which says why in its own words
    and reads what orjson does not (integers past a double's range, lone surrogates, to reject them by name)."""
    if isinstance(line, (bytes, bytearray, memoryview)):
        line = bytes(line)
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Rejected(f"invalid UTF-8: byte 0x{line[e.start]:02x} at position {e.start}") from None
    if error is not None and error.msg.startswith("depth limit exceeded"):
        raise Rejected(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels (column {error.colno})")
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except Rejected:  # NaN, Infinity
        raise
    except json.JSONDecodeError as e:
        raise Rejected(f"invalid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise Rejected("invalid JSON: nested too deeply") from None
    except ValueError:  # the only other one: an integer literal over sys.get_int_max_str_digits() digits
        raise Rejected(f"invalid JSON: number with more than {sys.get_int_max_str_digits()} digits") from None
    check_unicode(obj)
    return obj


def post_from_json_line(line: str | bytes, **kw) -> Post:
    return post_from_tweet(parse_json(line), **kw)
