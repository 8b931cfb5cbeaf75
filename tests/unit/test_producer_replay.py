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
    path = write(tmp_path, [
        '{"id": "1", "text": "Santé\\u0000 #covid", "created_at": "2021-03-01T10:00:00.000Z", "lang": "fr"}',
        "",
        '{"id": "2", "text": "x',
        '   ',
        '{"text": "no id"}',
        b'{"id": "3", "text": "caf\xe9 latin-1"}',
        '{"id": "4", "text": "' + "x" * 200 + '"}',
        '{"id": "5", "text": "ok"}\r',
    ])
    source = ReplaySource(path, max_text_bytes=100)
    items = [x for x in source if x is not None]
    assert items[0] == Post("1", "Santé #covid", 1614592800000, None, "fr", "replay")
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.line, r.reason.split(":")[0]) for r in rejects] == [(3, "invalid JSON"), (5, "missing field"),
                                                                  (7, "text too large")]
    assert rejects[0].raw == '{"id": "2", "text": "x'
    posts = [x for x in items if isinstance(x, Post)]
    assert [p.id for p in posts] == ["1", "3", "5"]
    assert posts[1].text == "caf\ufffd latin-1"  # invalid UTF-8 is read with replacement characters
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
