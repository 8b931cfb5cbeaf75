"""An independent implementation of the counting rules (ARCHITECTURE.md), in
Python with the `regex` module, to check hand-written expectations and the
Flink SQL against."""

from __future__ import annotations

import unicodedata
from collections import Counter

import regex

URL = regex.compile(r"(?:https?://|www\.)[^\p{White_Space}]*")
HASHTAG = regex.compile(r"(?<![\p{L}\p{Nd}_])#([\p{L}\p{M}\p{Nd}_]+)")
LETTER = regex.compile(r"\p{L}")


def hashtags(text: str) -> list[str]:
    text = URL.sub(" ", unicodedata.normalize("NFC", text))
    return [tag.lower() for tag in HASHTAG.findall(text) if LETTER.search(tag)]


def count_hashtags(posts: list[tuple[str, str]]) -> Counter:
    """posts: (id, text); each id counted once, the first copy wins."""
    seen: set[str] = set()
    counts: Counter = Counter()
    for post_id, text in posts:
        if post_id in seen:
            continue
        seen.add(post_id)
        counts.update(hashtags(text))
    return counts
