"""The X sources run tweepy's real StreamingClient and Client against a local mock of the X API v2."""

from __future__ import annotations

import json
import logging
import time

import pytest

from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.live import SourceError
from producer.sources.x import OversizeLine, XSearchSource, XStreamSource, _StreamingClient, bounded_lines, build_rules
from tests.producer.mocks import (
    CLIENT_NOT_ENROLLED,
    FAST_BACKOFF,
    OPERATIONAL_DISCONNECT,
    TOO_MANY_CONNECTIONS,
    Connection,
    MockX,
    collect,
    stream_frame,
    tweet,
)

TOKEN = "AAAAAAAAAAAAAAAAAAAAAsecret-token-for-tests"
OUR_RULE = "1500000000000000001"  # the id the mock gives the first rule added


def settings(mock: MockX, tmp_path, **kw) -> ProducerSettings:
    return ProducerSettings(
        x_api_url=mock.url,
        x_bearer_token=TOKEN,
        rejects_dir=tmp_path,
        metrics_port=-1,
        x_poll_interval_s=0.05,
        **FAST_BACKOFF,
        **kw,
    )


def test_rules_from_keywords_and_languages():
    assert build_rules(["covid", "vaccin", "COVID-19", "corona virus"], ["fr"]) == [
        '(covid OR vaccin OR "COVID-19" OR "corona virus") lang:fr'
    ]
    assert build_rules(["covid"], ["fr", "en"]) == ["covid (lang:fr OR lang:en)"]
    assert build_rules(["covid", "#santé"], []) == ["(covid OR #santé)"]
    long = [f"keyword{i:03d}" for i in range(100)]
    rules = build_rules(long, ["fr"], max_length=120)
    assert all(len(r) <= 120 for r in rules) and len(rules) > 1
    assert sum(r.count("keyword") for r in rules) == 100
    with pytest.raises(SourceError, match="at least one keyword"):
        build_rules([], ["fr"])


def test_rules_sync_is_idempotent(tmp_path):
    with MockX(token=TOKEN) as mock:
        mock.rules = {
            "7": {"id": "7", "value": "old rule", "tag": "tweetstream"},
            "8": {"id": "8", "value": "someone else's", "tag": "other"},
        }
        source = XStreamSource(settings(mock, tmp_path))
        client = _StreamingClient(source, TOKEN)
        assert source.sync_rules(client) == (1, 1)  # the stale rule of ours goes, the wanted one comes
        assert {r["value"] for r in mock.rules.values()} == {source.rules[0], "someone else's"}
        posts_before = len(mock.rule_posts)
        assert source.sync_rules(client) == (0, 0)
        assert len(mock.rule_posts) == posts_before  # nothing written the second time
        assert source.rule_ids == {OUR_RULE}


def test_stream_backs_off_reconnects_and_rejects_malformed_frames(tmp_path, caplog):
    t = [tweet(i, f"Le vaccin n°{i} #covid") for i in range(5)]
    script = [
        Connection(status=429, body=TOO_MANY_CONNECTIONS),
        Connection(
            frames=[
                stream_frame(t[0], [OUR_RULE]),
                b'{"data": {"id": "1", "text"',  # malformed
                stream_frame({"id": "9"}, [OUR_RULE]),  # no text
                stream_frame(tweet(99, "not ours"), ["999"], "other"),
                stream_frame(t[1], [OUR_RULE]),
            ],
            ending="abort",
        ),
        Connection(status=503, body={"title": "Service Unavailable"}),
        Connection(frames=[stream_frame(t[2], [OUR_RULE]), json.dumps(OPERATIONAL_DISCONNECT).encode()]),
        Connection(frames=[stream_frame(t[3], [OUR_RULE])], ending="hold"),
    ]
    caplog.set_level(logging.DEBUG)
    logging.getLogger("tweepy").setLevel(logging.DEBUG)
    with MockX(script, token=TOKEN) as mock:
        source = XStreamSource(settings(mock, tmp_path))
        posts, rejects = collect(source, 4)
        assert [p.id for p in posts] == [x["id"] for x in t[:4]]
        assert posts[0] == Post(t[0]["id"], t[0]["text"], 1614592800000, t[0]["author_id"], "fr", "x")
        assert [r.reason.split(":")[0] for r in rejects] == ["invalid JSON", "missing field"]
        assert rejects[0].raw == b'{"data": {"id": "1", "text"'
        assert source.stats.skipped == 1
        reasons = " | ".join(source.stats.reconnects)
        assert "HTTP 429 ConnectionException" in reasons and "TooManyConnections" in reasons
        assert "HTTP 503" in reasons and "operational-disconnect" in reasons
        assert "connection error" in reasons
        assert mock.stream_connections == 5
        # the stream asked for the fields the post needs, with the token in the header
        assert all("tweet.fields=created_at%2Clang%2Cauthor_id" in p for p in mock.stream_requests())
        assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, _, h in mock.requests)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged


def test_stream_refused_by_access_tier_is_a_clear_error(tmp_path):
    with MockX([Connection(status=403, body=CLIENT_NOT_ENROLLED)], token=TOKEN) as mock:
        source = XStreamSource(settings(mock, tmp_path))
        with pytest.raises(SourceError) as e:
            collect(source, 1)
    message = str(e.value)
    assert "HTTP 403" in message and "client-not-enrolled" in message and "x-search" in message
    assert TOKEN not in message


def test_wrong_token_is_a_clear_error(tmp_path):
    with MockX(token="another") as mock:
        with pytest.raises(SourceError, match="401"):
            collect(XStreamSource(settings(mock, tmp_path)), 1)


def test_no_token_is_refused_before_connecting(tmp_path, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    with pytest.raises(SourceError, match="X_BEARER_TOKEN"):
        XStreamSource(ProducerSettings(rejects_dir=tmp_path, x_bearer_token=None))


def test_token_is_masked_in_settings():
    s = ProducerSettings(x_bearer_token=TOKEN)
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())


@pytest.mark.parametrize("ending", ["hold", "silent"])
def test_stop_ends_a_quiet_stream_promptly(tmp_path, ending):
    with MockX([Connection(ending=ending)], token=TOKEN) as mock:
        source = XStreamSource(settings(mock, tmp_path))
        it = iter(source)
        while mock.stream_connections == 0:
            assert next(it) is None
        next(it)  # the client now waits for data
        t0 = time.monotonic()
        source.close()
        assert time.monotonic() - t0 < 1 and not source._thread.is_alive()
        assert all(x is None for x in it)


def test_recent_search_polls_pages_since_the_newest_and_backs_off_on_429(tmp_path):
    t = [tweet(i, f"covid {i}") for i in range(6)]
    seen_since: list[str | None] = []

    def page(data, newest, next_token=None):
        def answer(query):
            seen_since.append(query.get("since_id"))
            return {
                "data": data,
                "meta": {
                    "newest_id": newest,
                    "oldest_id": data[-1]["id"],
                    "result_count": len(data),
                    **({"next_token": next_token} if next_token else {}),
                },
            }

        return answer

    script = [
        page([t[1], t[0]], t[1]["id"], next_token="more"),  # first poll: the newest page only
        (
            429,
            {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
            {"x-rate-limit-reset": str(int(time.time()) + 1)},
        ),
        page([t[3], t[2]], t[3]["id"], next_token="p2"),
        page([{"id": "77"}], t[3]["id"]),  # page 2: a tweet without text
        b'{"data": [',  # malformed body: rejected, polled again
        page([t[5], t[4]], t[5]["id"]),
    ]
    with MockX(search_pages=script, token=TOKEN) as mock:
        source = XSearchSource(settings(mock, tmp_path, keywords=["covid"], languages=["fr"]))
        posts, rejects = collect(source, 6)
        assert [p.id for p in posts] == [x["id"] for x in t]
        assert {p.source for p in posts} == {"x"}
        assert seen_since == [None, t[1]["id"], t[1]["id"], t[3]["id"]]
        assert [r.reason.split(":")[0] for r in rejects] == ["missing field", "invalid JSON"]
        assert any("429" in k for k in source.stats.reconnects)
        queries = [p for m, p, _ in mock.requests if "/2/tweets/search/recent" in p]
        assert "query=covid+lang%3Afr" in queries[0] and "max_results=100" in queries[0]


# ---------------------------------------------------------------- malformed input: rejects, never a crash


def test_bounded_lines_never_hold_a_line_past_the_limit():
    chunks = [b"ab", b"c\r\n\r\nxxxxx", b"xxxxxxx", b"xx\r", b"\nend"]
    lines = list(bounded_lines(chunks, 5))
    assert lines == [b"abc", b"", b"x" * 12, b"end"]  # the oversize line: what was held of it...
    assert type(lines[2]) is OversizeLine and lines[2].size == 14  # ...and its size, without the \r
    assert list(bounded_lines([b"a\nb\n", b"c"], 5)) == [b"a", b"b", b"c"]


def test_stream_frames_too_deep_huge_or_invalid_unicode_are_rejects(tmp_path):
    ok = [tweet(i, f"covid {i}") for i in range(3)]
    frame = stream_frame(ok[0], [OUR_RULE])
    frames = [
        frame[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # 5,000 levels, from len + 6
        frame[:-1] + b', "n": ' + b"9" * 5000 + b"}",  # a 5,000-digit number
        stream_frame({"id": "7", "text": "a \ud800 b"}, [OUR_RULE]),  # json.dumps writes \\ud800
        stream_frame({"id": "\udc00", "text": "t"}, [OUR_RULE]),
        stream_frame({"id": "8", "text": "caf"}, [OUR_RULE]).replace(b"caf", b"caf\xe9"),
        stream_frame(tweet(9, "covid " + "x" * 50_000), [OUR_RULE]),  # over max_frame_bytes
        frame,
        stream_frame(ok[1], [OUR_RULE]),
    ]
    with MockX([Connection(frames=frames, ending="hold")], token=TOKEN) as mock:
        source = XStreamSource(settings(mock, tmp_path, max_frame_bytes=20_000))
        posts, rejects = collect(source, 2)
    assert [p.id for p in posts] == [ok[0]["id"], ok[1]["id"]]
    big = len(frames[5])
    assert [(r.line, r.reason) for r in rejects] == [
        (1, f"invalid JSON: nested deeper than 1024 levels (column {len(frame) + 6 + 1025})"),
        (2, "invalid JSON: number with more than 4300 digits"),
        (3, "invalid text: lone surrogate"),
        (4, "invalid JSON: lone surrogate in data.id"),
        (5, f"invalid UTF-8: byte 0xe9 at position {frames[4].index(b'caf') + 3}"),
        (6, f"frame too large: {big} bytes (limit 20000)"),
    ]
    assert rejects[2].raw == frames[2]  # the frame as it came
    assert rejects[5].size == big and rejects[5].raw == frames[5][:10_000]


def test_recent_search_pages_too_deep_huge_large_or_with_invalid_unicode_are_rejects(tmp_path):
    t = [tweet(i, f"covid {i}") for i in range(3)]
    page = {
        "data": [t[2], {**t[1], "text": "bad \ud800"}, {**t[1], "id": "5", "author_id": "\udc00"}, t[0]],
        "meta": {"newest_id": t[2]["id"], "result_count": 4},
    }
    script = [
        b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"meta": {"result_count": ' + b"9" * 5000 + b"}}",
        b'{"data": [' + b" " * 50_000 + b"]}",  # over max_frame_bytes
        b"[1, 2]",
        page,
    ]
    with MockX(search_pages=script, token=TOKEN) as mock:
        source = XSearchSource(settings(mock, tmp_path, keywords=["covid"], languages=["fr"], max_frame_bytes=20_000))
        posts, rejects = collect(source, 2)
    assert [p.id for p in posts] == [t[0]["id"], t[2]["id"]]
    assert [(r.line, r.reason) for r in rejects] == [
        (1, "invalid JSON: nested deeper than 1024 levels (column 1034)"),
        (2, "invalid JSON: number with more than 4300 digits"),
        (3, "page too large: over 20000 bytes"),
        (4, "not a JSON object"),
        (5, "invalid JSON: lone surrogate in author_id"),  # tweets go oldest first: the page reversed
        (5, "invalid text: lone surrogate"),
    ]
    assert '"text": "bad \\ud800"' in rejects[5].raw  # the tweet, written back with its escape
    assert set(source.stats.reconnects) == {"malformed response", "response too large"}
