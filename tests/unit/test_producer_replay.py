"""The replay source: X API v2 lines to posts, bad lines to rejects, at a chosen pace."""

from __future__ import annotations

import json
import time

from producer.post import Post
from producer.run import Reject
from producer.sources.replay import ReplaySource


def write(tmp_path, lines: list[str | bytes]):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


def test_lines_become_posts_or_rejects_with_their_line_numbers(tmp_path):
    path = write(
        tmp_path,
        [
            '{"id": "1", "text": "Santé\\u0000 #covid", "created_at": "2021-03-01T10:00:00.000Z", "lang": "fr"}',
            "",
            '{"id": "2", "text": "x',
            "   ",
            '{"text": "no id"}',
            b'{"id": "3", "text": "caf\xe9 latin-1"}',
            '{"id": "4", "text": "' + "x" * 200 + '"}',
            '{"id": "5", "text": "ok"}\r',
        ],
    )
    source = ReplaySource(path, max_text_bytes=100)
    items = [x for x in source if x is not None]
    assert items[0] == Post("1", "Santé #covid", 1614592800000, None, "fr", "replay")
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.line, r.reason) for r in rejects] == [
        (3, "invalid JSON: Unterminated string starting at (column 21)"),
        (5, "missing field: id"),
        (6, "invalid UTF-8: byte 0xe9 at position 24"),
        (7, "text too large: 200 bytes (limit 100)"),
    ]
    assert rejects[0].raw == b'{"id": "2", "text": "x'
    posts = [x for x in items if isinstance(x, Post)]
    assert [p.id for p in posts] == ["1", "5"]
    assert source.progress()[:2] == (path.stat().st_size, path.stat().st_size)


def test_speed_keeps_the_original_pace_times_a_factor(tmp_path):
    lines = [json.dumps({"id": str(i), "text": "t", "created_at": f"2021-03-01T10:00:0{i}.000Z"}) for i in range(5)]
    source = ReplaySource(write(tmp_path, lines), speed=8)  # 4 s of events in 0.5 s
    t0 = time.monotonic()
    stamps = []
    for item in source:
        if isinstance(item, Post):
            stamps.append((time.monotonic() - t0, item.created_at))
    assert 0.45 < stamps[-1][0] < 1.2
    assert stamps[2][0] > 0.2
    assert [c for _, c in stamps] == [1614592800000 + 1000 * i for i in range(5)]  # event times kept


def test_without_speed_there_is_no_wait(tmp_path):
    lines = [json.dumps({"id": str(i), "text": "t", "created_at": f"2021-03-0{i + 1}T10:00:00Z"}) for i in range(5)]
    t0 = time.monotonic()
    assert len([x for x in ReplaySource(write(tmp_path, lines)) if x is not None]) == 5
    assert time.monotonic() - t0 < 0.5


# ---------------------------------------------------------------- malformed lines: rejects, never a crash

DEEP = b'{"id": "1", "text": "t", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # 5,000 levels
HUGE_NUMBER = b'{"id": "2", "text": "t", "n": ' + b"9" * 5000 + b"}"  # a 5,000-digit integer
LONE_SURROGATE = b'{"id": "3", "text": "bad \\ud800 text"}'  # an escape of half a pair
GOOD = b'{"id": "%d", "text": "ok #covid", "created_at": "2021-03-01T10:00:00.000Z"}'


def read(source):
    items = [x for x in source if x is not None]
    return [x for x in items if isinstance(x, Post)], [x for x in items if isinstance(x, Reject)]


def test_the_lines_of_the_report_are_rejects_and_the_replay_goes_on(tmp_path):
    path = write(tmp_path, [DEEP, HUGE_NUMBER, LONE_SURROGATE, GOOD % 4])
    posts, rejects = read(ReplaySource(path))
    assert [(r.line, r.reason) for r in rejects] == [
        (1, "invalid JSON: nested deeper than 1024 levels (column 1055)"),
        (2, "invalid JSON: number with more than 4300 digits"),
        (3, "invalid text: lone surrogate"),
    ]
    assert [r.raw for r in rejects] == [DEEP, HUGE_NUMBER, LONE_SURROGATE]  # the lines as they are, as bytes
    assert [p.id for p in posts] == ["4"]


def test_every_kind_of_malformed_line_has_its_reason(tmp_path):
    lines = [
        b'{"id": "\\udc00", "text": "t"}',  # lone surrogate: id
        b'{"id": "2", "text": "t", "author_id": "\\ud800"}',  # ... author
        b'{"id": "3", "text": "t", "entities": {"hashtags": [{"tag": "covid\\ud83d"}]}}',  # ... a field not used
        b'{"id": "4", "text": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"id": "5", "text": "\xff\xfe"}',
        b'{"id": ' + b"1" * 4301 + b', "text": "t"}',  # an id past the limit
        b'{"id": "7", "text": "t", "score": NaN}',
        b"[" * 1025 + b"]" * 1025,
        b"[" * 1024 + b"]" * 1024,  # deep, but valid
        b"[" * 1000,  # unclosed
        b'{"id": "9", "text": "ok \\ud83d\\ude00", "n": ' + b"9" * 400 + b"}",  # a pair, a 400-digit int
        b'{"id": 123456789012345678901234567890, "text": "big id"}',
    ]
    posts, rejects = read(ReplaySource(write(tmp_path, lines)))
    assert [(r.line, r.reason) for r in rejects] == [
        (1, "invalid JSON: lone surrogate in id"),
        (2, "invalid JSON: lone surrogate in author_id"),
        (3, "invalid JSON: lone surrogate in entities.hashtags[0].tag"),
        (4, "invalid UTF-8: byte 0xe9 at position 24"),
        (5, "invalid UTF-8: byte 0xff at position 21"),
        (6, "invalid JSON: number with more than 4300 digits"),
        (7, "invalid JSON: NaN is not a JSON value"),
        (8, "invalid JSON: nested deeper than 1024 levels (column 1026)"),
        (9, "not a JSON object"),
        (10, "invalid JSON: nested too deeply"),
    ]
    assert [(p.id, p.text) for p in posts] == [("9", "ok \U0001f600"), ("123456789012345678901234567890", "big id")]


def test_a_line_over_the_limit_is_rejected_and_skipped_without_reading_it_whole(tmp_path):
    big = b'{"id": "big", "text": "' + b"x" * 300_000 + b'"}'  # 300,025 bytes
    path = write(tmp_path, [GOOD % 1, big, GOOD % 3, big + b"\r", GOOD % 5, b"y" * 1001, b"z" * 1000, GOOD % 8])
    reads = []
    source = ReplaySource(path, max_line_bytes=1000)
    posts, rejects = read(_spy_reads(source, reads))
    assert [(r.line, r.reason, r.size) for r in rejects] == [
        (2, "line too large: 300025 bytes (limit 1000)", 300025),
        (4, "line too large: 300025 bytes (limit 1000)", 300025),  # its \r\n is not part of it
        (6, "line too large: 1001 bytes (limit 1000)", 1001),
        (7, "invalid JSON: Expecting value (column 1)", None),
    ]  # exactly at the limit: read, then parsed
    assert rejects[0].raw == big[:1002]  # what was read of it: the limit + 2
    assert [p.id for p in posts] == ["1", "3", "5", "8"]  # the good lines after are sent
    assert max(reads) <= 1 << 16  # never more than a chunk at once


def test_a_huge_last_line_without_a_newline(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(GOOD % 1 + b"\n" + b"x" * 5000)
    posts, rejects = read(ReplaySource(path, max_line_bytes=1000))
    assert [p.id for p in posts] == ["1"]
    assert [(r.line, r.reason) for r in rejects] == [(2, "line too large: 5000 bytes (limit 1000)")]


def _spy_reads(source: ReplaySource, reads: list[int]):
    """The source, with the size of every readline() it asks for recorded."""
    real_open = open

    class File:
        def __init__(self, f):
            self.f = f

        def readline(self, size=-1):
            reads.append(size)
            return self.f.readline(size)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    import producer.sources.replay as replay

    replay.open = lambda *a, **kw: File(real_open(*a, **kw))
    try:
        yield from source
    finally:
        del replay.open
