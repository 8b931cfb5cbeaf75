"""An independent implementation of the counting rules (README, "Counting rules"), in
plain Python with the `regex` module, to hold the fixtures and the Flink SQL to.

A package of its own, used by the tests and the benchmarks alike; it imports nothing
of the pipeline's code (not even its stopword reader): it reads sql/stopwords/*.txt
itself (tests/unit/test_reference_package.py holds the two readings equal)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex

STOPWORDS_DIR = Path(__file__).resolve().parent.parent / "sql" / "stopwords"


def stopwords() -> list[str]:
    """The words of sql/stopwords/*.txt: one a line, `#` starts a comment, NFC and
    lower-cased, each once, sorted."""
    words = set()
    for f in sorted(STOPWORDS_DIR.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            w = line.split("#", 1)[0].strip()
            if w:
                words.add(unicodedata.normalize("NFC", w).lower())
    return sorted(words)


URL = regex.compile(r"(?:https?://|www\.)[^\p{White_Space}]*")
HASHTAG = regex.compile(r"(?<![\p{L}\p{Nd}_])#([\p{L}\p{M}\p{Nd}_]+)")
TAG_OR_MENTION = regex.compile(r"(?<![\p{L}\p{Nd}_])[#@][\p{L}\p{M}\p{Nd}_]+")
WORD = regex.compile(r"\p{L}[\p{L}\p{M}]*")
LETTER = regex.compile(r"\p{L}")
MARK = regex.compile(r"\p{M}")
STOPWORDS = frozenset(stopwords())
MAX_TOKEN = 100  # code points, after NFC: a longer hashtag or word is not counted
FUTURE_SLACK_MS = 5 * 60_000  # created_at later than this after the record's timestamp is not believed


def _without_urls(text: str) -> str:
    return URL.sub(" ", unicodedata.normalize("NFC", text))


def hashtags(text: str) -> list[str]:
    # the length is the run's as written (after NFC), before lower-casing
    return [tag.lower() for tag in HASHTAG.findall(_without_urls(text)) if LETTER.search(tag) and len(tag) <= MAX_TOKEN]


def words(text: str, extra_stopwords: Iterable[str] = ()) -> list[str]:
    stop = STOPWORDS | set(extra_stopwords)
    found = (w.lower() for w in WORD.findall(TAG_OR_MENTION.sub(" ", _without_urls(text))) if len(w) <= MAX_TOKEN)
    return [w for w in found if len(MARK.sub("", w)) >= 2 and w not in stop]


def unique(posts: Iterable[dict]) -> list[dict]:
    """Each post id once, the first copy wins."""
    seen: set[str] = set()
    out = []
    for p in posts:
        if p["id"] not in seen:
            seen.add(p["id"])
            out.append(p)
    return out


def count_hashtags(posts: Iterable[dict]) -> Counter:
    return Counter(t for p in unique(posts) for t in hashtags(p["text"]))


def count_words(posts: Iterable[dict]) -> Counter:
    return Counter(w for p in unique(posts) for w in words(p["text"]))


def event_ms(created_at: int, record_ms: int | None) -> int:
    """A post's event time: its created_at, unless that is more than 5 minutes
    after the Kafka record's timestamp (a poster's clock): then the record's."""
    if record_ms is not None and created_at > record_ms + FUTURE_SLACK_MS:
        return record_ms
    return created_at


def minute(ms: int) -> int:
    return ms - ms % 60_000


def count_per_minute(posts: Iterable[dict], tokens) -> Counter:
    """(minute start ms, token) -> occurrences; posts carry created_at in epoch ms."""
    return Counter((minute(p["created_at"]), t) for p in unique(posts) for t in tokens(p["text"]))


WORDS_PER_MINUTE = 1000  # the k of top_words(words, k) in sql/v*_counts.sql
WORDS_ALL_TIME = 1000  # the k of top_counts(word, n, k) in sql/v*_counts.sql


def top(counts: Counter, k: int = WORDS_ALL_TIME) -> dict:
    """The k most used (ties by word in code-point order), most used first: what the
    all-time unigram_counts holds."""
    best = sorted((-n, w) for w, n in counts.items() if n > 0)[:k]
    return {w: -negn for negn, w in best}


def top_per_minute(counts: Counter, k: int = WORDS_PER_MINUTE) -> Counter:
    """(minute, word) -> count, keeping for each minute only its k most used words,
    ties by word in code-point order: what unigram_minute_counts holds."""
    by_minute: dict[int, list] = {}
    for (m, w), n in counts.items():
        by_minute.setdefault(m, []).append((-n, w))
    kept = Counter()
    for m, entries in by_minute.items():
        for negn, w in sorted(entries)[:k]:
            kept[(m, w)] = -negn
    return kept


def top_mismatches(before: dict, after: dict, want: dict, k: int = WORDS_ALL_TIME) -> dict:
    """What a table of the k most used words (the all-time unigram_counts, or one minute
    of unigram_minute_counts) gained since `before`, against `want`: {word: (expected gain, before, after)} for each word that
    is wrong. A word in the table before and after has its exact count both times: it
    gained exactly what was expected. While the table holds fewer than k words it holds
    every word. A word that entered a full table had a count nobody saw: it holds at
    least what it gained; a word not in a full table is not checked."""
    assert len(after) <= k, f"{len(after)} words kept, at most {k}"
    full = len(after) == k
    wrong = {}
    for w in want.keys() | after.keys() | before.keys():
        b, a, e = before.get(w), after.get(w), want.get(w, 0)
        if b is not None and a is not None:
            ok = a - b == e
        elif not full:
            ok = (a or 0) - (b or 0) == e
        else:
            ok = a is None or a >= e
        if not ok:
            wrong[w] = (e, b, a)
    return wrong


def trending(posts: list[dict], watermark_ms: int, top: int = 20) -> dict[int, dict]:
    """The trending table as the pipeline leaves it: for each 75-minute window
    (sliding by one minute) that closed before the watermark and holds hashtags,
    its top `top` by score; rows upserted by rank in window order."""
    events = [(p["created_at"], t) for p in unique(posts) for t in hashtags(p["text"])]
    if not events:
        return {}
    first = minute(min(ms for ms, _ in events))
    table: dict[int, dict] = {}
    end = first + 60_000
    while end - 1 <= watermark_ms:
        recent: Counter = Counter()
        previous: Counter = Counter()
        for ms, tag in events:
            if end - 75 * 60_000 <= ms < end:
                (recent if ms >= end - 15 * 60_000 else previous)[tag] += 1
        rows = []
        for tag in set(recent) | set(previous):
            r, p = recent[tag], previous[tag]
            if r >= 3:
                rows.append(
                    {
                        "hashtag": tag,
                        "window_end_ms": end,
                        "recent": r,
                        "previous": p,
                        "score": (r + 1.0) / (p / 4.0 + 1.0),
                    }
                )
        rows.sort(key=lambda row: (-row["score"], -row["recent"], row["hashtag"]))
        for rank, row in enumerate(rows[:top], start=1):
            table[rank] = row
        end += 60_000
    return table
