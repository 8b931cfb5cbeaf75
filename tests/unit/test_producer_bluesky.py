"""The Bluesky source runs its real websockets client against a local Jetstream stand-in."""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import parse_qs, urlsplit

import pytest

from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.bluesky import BlueskySource, keyword_matcher, language_picker, with_tags
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
    assert with_tags("texte", ["2021", "#tag"]) == "texte #tag"              # digits only: not a hashtag


def test_jetstream_posts_are_filtered_mapped_and_resumed_after_disconnects(tmp_path):
    decomposed = unicodedata.normalize("NFD", "Le vaccin à l'école\x00 #santé")
    first = [
        json.dumps(IDENTITY_EVENT),
        json.dumps(jetstream_post(1, "Le vaccin arrive #santé", langs=["fr"], tags=["santé"])),
        "{not json",
        b"\x00\x01binary",
        json.dumps(jetstream_post(2, "the vaccine is here", langs=["en"])),           # other language
        json.dumps(jetstream_post(3, "rien à voir", langs=["fr"])),                   # no keyword
        json.dumps({**jetstream_post(4, "covid"), "commit": {"operation": "delete", "collection": "app.bsky.feed.post",
                                                             "rkey": "x", "rev": "y"}}),
        json.dumps(jetstream_post(5, "Nouvelles du covid", langs=["fr-FR"], tags=["vaccination"])),
        json.dumps({**jetstream_post(6, "x", langs=["fr"]), "did": None}),            # no author
        json.dumps(jetstream_post(7, decomposed, langs=["fr"], created="not a date")),
    ]
    sessions = [Session(status=429, headers={"Retry-After": "0"}),
                Session(frames=first, ending="abort"),
                Session(frames=[json.dumps(jetstream_post(8, "rien", langs=["fr"]))], ending="close"),
                Session(frames=[json.dumps(jetstream_post(10, "Corona virus: point du jour", langs=["fr"]))])]
    with MockJetstream(sessions) as server:
        source = BlueskySource(settings(server.url, tmp_path))
        posts, rejects = collect(source, 4)
        assert [p.text for p in posts] == ["Le vaccin arrive #santé", "Nouvelles du covid #vaccination",
                                           "Le vaccin à l'école #santé", "Corona virus: point du jour"]
        p = posts[0]
        assert p == Post("at://did:plc:testuser/app.bsky.feed.post/3l3qo2vuowo01", "Le vaccin arrive #santé",
                         1725911162102, "did:plc:testuser", "fr", "bluesky")
        assert posts[1].lang == "fr-FR"
        assert posts[2].created_at == (1725911162329308 + 7) // 1000  # no readable createdAt: the event time
        assert [r.reason for r in rejects] == [
            "invalid JSON: Expecting property name enclosed in double quotes (column 2)",
            "binary frame (expected JSON text)", "missing field: did"]
        assert [r.line for r in rejects] == [3, 4, 9]
        assert source.stats.skipped == 5  # identity, other language, no keyword (twice), delete
        assert {"HTTP 429", "connection closed (1006)", "connection closed (1011)"} <= set(source.stats.reconnects)
        queries = [parse_qs(urlsplit(path).query) for path in server.paths]
        assert all(q["wantedCollections"] == ["app.bsky.feed.post"] for q in queries)
        assert "cursor" not in queries[1]
        assert queries[2]["cursor"] == [str(1725911162329308 + 7)]   # resumes after the last event seen
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
