"""The Bluesky source runs its real websockets client against a local Jetstream stand-in."""

from __future__ import annotations

import json
import time
import unicodedata
from urllib.parse import parse_qs, urlsplit

import pytest

from producer.config import ProducerSettings
from producer.post import Post
from producer.run import Reject
from producer.sources.bluesky import BlueskySource, event_time, keyword_matcher, language_picker, with_tags
from producer.sources.live import SourceError
from tests.producer.mocks import FAST_BACKOFF, IDENTITY_EVENT, MockJetstream, Session, collect, jetstream_post


def settings(url: str, tmp_path, **kw) -> ProducerSettings:
    return ProducerSettings(**{"bluesky_url": url, "rejects_dir": tmp_path, "metrics_port": -1, **FAST_BACKOFF, **kw})


def test_keywords_match_at_word_starts_case_insensitively():
    match = keyword_matcher(["covid", "vaccin", "COVID-19", "corona virus"])
    assert match("Le #Vaccin arrive") and match("les vaccins") and match("COVID-19 en France")
    assert match("le corona\u00a0 virus") and match("CORONA VIRUS")
    assert not match("antivaccin") and not match("coronavirus")
    assert keyword_matcher([])("anything")


def test_languages_match_primary_subtags():
    pick = language_picker(["fr"])
    assert pick(["en", "fr-CA"]) == "fr-CA"
    assert pick(["en"]) is False and pick(None) is False
    assert language_picker([])(["de"]) == "de" and language_picker([])(None) is None


def test_facet_tags_missing_from_the_text_are_appended():
    assert with_tags("Le vaccin #Santé arrive", ["santé", "vaccination"]) == "Le vaccin #Santé arrive #vaccination"
    assert with_tags("voir #COVID-19", ["COVID-19"]) == "voir #COVID-19"  # counted as covid already
    assert with_tags("texte", ["2021", "#tag"]) == "texte #tag"  # digits only: not a hashtag


def test_jetstream_posts_are_filtered_mapped_and_resumed_after_disconnects(tmp_path):
    decomposed = unicodedata.normalize("NFD", "Le vaccin à l'école\x00 #santé")
    first = [
        json.dumps(IDENTITY_EVENT),
        json.dumps(jetstream_post(1, "Le vaccin arrive #santé", langs=["fr"], tags=["santé"])),
        "{not json",
        b"\x00\x01binary",
        json.dumps(jetstream_post(2, "the vaccine is here", langs=["en"])),  # other language
        json.dumps(jetstream_post(3, "rien à voir", langs=["fr"])),  # no keyword
        json.dumps(
            {
                **jetstream_post(4, "covid"),
                "commit": {"operation": "delete", "collection": "app.bsky.feed.post", "rkey": "x", "rev": "y"},
            }
        ),
        json.dumps(jetstream_post(5, "Nouvelles du covid", langs=["fr-FR"], tags=["vaccination"])),
        json.dumps({**jetstream_post(6, "x", langs=["fr"]), "did": None}),  # no author
        json.dumps(jetstream_post(7, decomposed, langs=["fr"], created="not a date")),
    ]
    sessions = [
        Session(status=429, headers={"Retry-After": "0"}),
        Session(frames=first, ending="abort"),
        Session(frames=[json.dumps(jetstream_post(8, "rien", langs=["fr"]))], ending="close"),
        Session(frames=[json.dumps(jetstream_post(10, "Corona virus: point du jour", langs=["fr"]))]),
    ]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path))
        posts, rejects = collect(source, 4)
        assert [p.text for p in posts] == [
            "Le vaccin arrive #santé",
            "Nouvelles du covid #vaccination",
            "Le vaccin à l'école #santé",
            "Corona virus: point du jour",
        ]
        p = posts[0]
        assert p == Post(
            "at://did:plc:testuser/app.bsky.feed.post/3l3qo2vuowo01",
            "Le vaccin arrive #santé",
            1725911162102,
            "did:plc:testuser",
            "fr",
            "bluesky",
        )
        assert posts[1].lang == "fr-FR"
        assert posts[2].created_at == (1725911162329308 + 7) // 1000  # no readable createdAt: the event time
        assert [r.reason for r in rejects] == [
            "invalid JSON: Expecting property name enclosed in double quotes (column 2)",
            "binary frame (expected JSON text)",
            "missing field: did",
        ]
        assert [r.line for r in rejects] == [3, 4, 9]
        assert source.stats.skipped == 5  # identity, other language, no keyword (twice), delete
        assert {"HTTP 429", "connection closed (1006)", "connection closed (1011)"} <= set(source.stats.reconnects)
        queries = [parse_qs(urlsplit(path).query) for path in server.paths]
        assert all(q["wantedCollections"] == ["app.bsky.feed.post"] for q in queries)
        assert "cursor" not in queries[1]
        assert queries[2]["cursor"] == [str(1725911162329308 + 7)]  # resumes after the last event seen
        assert queries[3]["cursor"] == [str(1725911162329308 + 8)]


def test_a_refused_url_is_a_clear_error(tmp_path):
    with MockJetstream([Session(status=404)]) as server:
        with pytest.raises(SourceError, match="HTTP 404"):
            collect(BlueskySource(settings(server.url, tmp_path)), 1)


def test_a_silent_connection_is_replaced(tmp_path):
    sessions = [Session(ending="hold"), Session(frames=[json.dumps(jetstream_post(1, "covid", langs=["fr"]))])]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path, stall_timeout_s=0.6))
        posts, _ = collect(source, 1)
        assert len(posts) == 1 and any("no message" in r for r in source.stats.reconnects)


def test_oversize_frames_are_rejected(tmp_path):
    big = json.dumps(jetstream_post(1, "covid " + "x" * 5000, langs=["fr"]))
    sessions = [Session(frames=[big, json.dumps(jetstream_post(2, "covid", langs=["fr"]))])]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path, max_frame_bytes=2000))
        posts, rejects = collect(source, 1)
        assert [r.reason.split(":")[0] for r in rejects] == ["frame too large"]
        assert len(posts) == 1


# ---------------------------------------------------------------- event time

TIME_US = 1725911162329308 + 1  # jetstream_post(1)'s time_us: 2024-09-09T19:46:02.329309Z
TIME_MS = TIME_US // 1000


@pytest.mark.parametrize(
    "created, expected",
    [
        ("2024-09-09T19:46:02.102Z", 1725911162102),  # createdAt, a little before time_us: kept
        ("2024-09-09T19:47:02.329Z", TIME_MS + 60_000),  # 1 min ahead of time_us: a clock a bit fast, kept
        ("2024-09-09T19:51:02.329Z", TIME_MS + 300_000),  # exactly 5 min ahead: kept
        ("2024-09-09T19:56:02.329Z", TIME_MS),  # 10 min ahead: time_us
        ("2124-09-09T19:46:02.102Z", TIME_MS),  # a century ahead: time_us
        ("not a date", TIME_MS),  # unparsable: time_us
        (None, TIME_MS),  # missing: time_us
        (12345, TIME_MS),  # not a string: time_us
    ],
)
def test_the_event_time_is_created_at_unless_missing_unreadable_or_ahead_of_time_us(tmp_path, created, expected):
    assert event_time(created, TIME_US) == expected
    source = BlueskySource(settings("ws://unused", tmp_path))
    event = jetstream_post(1, "covid", langs=["fr"])
    if created is None:
        del event["commit"]["record"]["createdAt"]
    else:
        event["commit"]["record"]["createdAt"] = created
    posts, rejects = feed(source, [json.dumps(event)])
    assert [p.created_at for p in posts] == [expected] and rejects == []


def test_without_time_us_the_event_time_is_created_at_or_the_time_of_reading(tmp_path):
    assert event_time("2024-09-09T19:56:02.329Z", None) == 1725911762329
    assert event_time("nope", None) is None  # make_post then takes the time of reading
    source = BlueskySource(settings("ws://unused", tmp_path))
    event = {**jetstream_post(1, "covid", langs=["fr"]), "time_us": "1725911162329309"}  # not a number
    before = int(time.time() * 1000)
    event["commit"]["record"]["createdAt"] = "garbage"
    posts, _ = feed(source, [json.dumps(event)])
    assert posts[0].created_at >= before and source.cursor is None


# ---------------------------------------------------------------- malformed frames: rejects, never a crash


def feed(source: BlueskySource, frames: list) -> tuple[list, list]:
    """Frames handed to the source's event handler directly (no connection): (posts, rejects)."""
    for frame in frames:
        source.event(frame)
    items = []
    while not source._queue.empty():
        items.append(source._queue.get_nowait())
    return [x for x in items if isinstance(x, Post)], [x for x in items if isinstance(x, Reject)]


def test_deep_huge_or_invalid_unicode_frames_are_rejects(tmp_path):
    source = BlueskySource(settings("ws://unused", tmp_path, max_frame_bytes=50_000))
    good = json.dumps(jetstream_post(9, "covid ok", langs=["fr"]))
    deep = good[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    huge_number = good[:-1] + ', "n": ' + "9" * 5000 + "}"
    surrogate_text = good.replace('"covid ok"', '"covid \\ud800"')  # an escape of half a pair
    surrogate_did = good.replace('"did:plc:testuser"', '"did:plc:\\udc00"')
    surrogate_tag = json.dumps(jetstream_post(4, "covid #a", langs=["fr"], tags=["a"])).replace(
        '"tag": "a"', '"tag": "a\\ud83d"'
    )
    accents = json.dumps(jetstream_post(5, "covid " + "é" * 30_000, langs=["fr"]), ensure_ascii=False)
    posts, rejects = feed(
        source,
        [
            deep,
            huge_number,
            surrogate_text,
            surrogate_did,
            surrogate_tag,
            accents,
            good,
            "[" * 1025 + "]" * 1025,
            "null",
        ],
    )
    assert [(r.line, r.reason) for r in rejects] == [
        (1, "invalid JSON: nested deeper than 1024 levels (column 1373)"),
        (2, "invalid JSON: number with more than 4300 digits"),
        (3, "invalid text: lone surrogate"),
        (4, "invalid JSON: lone surrogate in did"),
        (5, "invalid JSON: lone surrogate in commit.record.facets[0].features[0].tag"),
        (6, f"frame too large: {len(accents.encode())} bytes (limit 50000)"),  # < 50,000 characters, 60,000+ bytes
        (8, "invalid JSON: nested deeper than 1024 levels (column 1026)"),
        (9, "not a JSON object"),
    ]
    assert rejects[5].size == len(accents.encode()) and len(rejects[5].raw) == 10_000
    assert [p.text for p in posts] == ["covid ok"]


def test_a_frame_over_the_websocket_limit_is_a_reject_and_a_reconnect_past_it(tmp_path):
    huge = json.dumps(jetstream_post(2, "covid " + "x" * 20_000, langs=["fr"]))  # over 4 x 2,000 bytes
    sessions = [
        Session(frames=[json.dumps(jetstream_post(1, "covid un", langs=["fr"])), huge]),
        Session(frames=[json.dumps(jetstream_post(3, "covid trois", langs=["fr"]))]),
    ]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path, max_frame_bytes=2000))
        posts, rejects = collect(source, 2)
    assert [p.text for p in posts] == ["covid un", "covid trois"]
    assert [(r.line, r.reason) for r in rejects] == [(2, "frame too large: over 8000 bytes (limit 2000)")]
    assert source.stats.reconnects == {"frame too large (1009)": 1}
    # Jetstream would send that frame again from the cursor: it resumes 1 s later
    assert parse_qs(urlsplit(server.paths[1]).query)["cursor"] == [str(1725911162329308 + 1 + 1_000_000)]


def test_connections_closed_at_once_keep_the_backoff_growing(tmp_path):
    sessions = [Session(ending="close")] * 3 + [Session(frames=[json.dumps(jetstream_post(1, "covid", langs=["fr"]))])]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path))
        posts, _ = collect(source, 1)
    assert len(posts) == 1 and source.stats.reconnects == {"connection closed (1011)": 3}
    assert source.backoff.failures == {"network": 3}  # each handshake worked; none of them counted as a success
