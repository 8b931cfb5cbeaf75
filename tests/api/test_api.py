"""The JSON API against known rows in a real PostgreSQL (see conftest.py)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

from .conftest import MIN, NEWEST, NEWEST_MINUTE, connect


def test_hashtags_sorted_by_count_then_code_point(client):
    assert client.get("/api/hashtags", params={"limit": 5}).json() == [
        {"hashtag": "covid", "count": 10},
        {"hashtag": "vaccin", "count": 10},
        {"hashtag": "a", "count": 3},
        {"hashtag": "b", "count": 3},
        {"hashtag": "é", "count": 3},
    ]


def test_default_limit_and_window_is_all(client):
    assert len(client.get("/api/hashtags").json()) == 6


@pytest.mark.parametrize(
    "window, expected",
    [
        (
            "5m",
            [{"hashtag": "covid", "count": 5}, {"hashtag": "vaccin", "count": 1}],
        ),  # the newest minute and the 4 before
        ("15m", [{"hashtag": "vaccin", "count": 7}, {"hashtag": "covid", "count": 5}]),
        ("24h", [{"hashtag": "vaccin", "count": 7}, {"hashtag": "covid", "count": 5}]),  # 2 days back is out
    ],
)
def test_hashtag_windows_count_back_from_the_newest_post(client, window, expected):
    assert client.get("/api/hashtags", params={"window": window}).json() == expected


def test_unigrams_all_time_and_windowed(client):
    assert client.get("/api/unigrams").json() == [{"word": "vaccin", "count": 7}, {"word": "dose", "count": 2}]
    assert client.get("/api/unigrams", params={"window": "15m"}).json() == [{"word": "dose", "count": 2}]
    assert client.get("/api/unigrams", params={"window": "1h"}).json() == [
        {"word": "vaccin", "count": 7},
        {"word": "dose", "count": 2},
    ]


def test_timeline_is_zero_filled_per_minute(client):
    tl = client.get("/api/timeline", params={"hashtag": ["covid", "#Vaccin"], "minutes": 5}).json()
    assert tl == {
        "start_ms": NEWEST_MINUTE - 4 * MIN,
        "minutes": 5,
        "series": [{"hashtag": "covid", "counts": [3, 0, 0, 0, 2]}, {"hashtag": "vaccin", "counts": [1, 0, 0, 0, 0]}],
    }


def test_timeline_defaults_to_the_top_hashtags_of_the_period(client):
    tl = client.get("/api/timeline", params={"minutes": 11}).json()
    assert [s["hashtag"] for s in tl["series"]] == ["vaccin", "covid"]


def test_trending_is_computed_from_the_minute_counts(client):
    """The 75 minutes ending with the newest post's minute: covid 2 + 3 and vaccin 1 + 6 uses in
    the last 15 minutes, none in the hour before; the hashtag two days back is outside."""
    rows = client.get("/api/trending").json()
    assert [(r["rank"], r["hashtag"], r["recent"], r["previous"], r["score"], r["window_end_ms"]) for r in rows] == [
        (1, "vaccin", 7, 0, 8.0, NEWEST_MINUTE + MIN),
        (2, "covid", 5, 0, 6.0, NEWEST_MINUTE + MIN),
    ]


def test_stats(client):
    s = client.get("/api/stats").json()
    assert s["posts_counted"] == 42
    assert s["newest_event"] == "2021-03-01T10:00:30Z"
    assert s["freshness_seconds"] >= 0
    assert s["tracked_keywords"] == ["covid", "vaccin", "COVID-19", "corona virus"]
    assert set(s["pipeline"]) == {
        "flink_job",
        "version",
        "connectors",
        "stages",
        "stalled",
        "stall_after_seconds",
        "healthy",
    }
    assert s["pipeline"]["stall_after_seconds"] == 45.0
    assert set(s["rejected"]) == {"producer", "pipeline", "sink", "dead_letter"}
    assert s["rejected"]["sink"] == 0  # nothing set aside by the sink guard in this database
    assert s["rejected"]["pipeline"] == 2


def test_rejects_lists_what_the_pipeline_set_aside_newest_first(client):
    got = client.get("/api/rejects", params={"limit": 5}).json()
    assert [
        (r["tweets_partition"], r["tweets_offset"], r["reason"], r["post_id"], r["text_preview"], r["raw_bytes"])
        for r in got
    ] == [
        (1, 3, "text longer than 25000 characters (1048576)", "big-1", "aaaa", None),
        (0, 7, "IOException: Unknown data format. Magic number does not match", None, None, 5),
    ]
    assert client.get("/api/rejects", params={"limit": 1}).json()[0]["tweets_offset"] == 3


@pytest.mark.parametrize(
    "path, params, message",
    [
        ("/api/hashtags", {"limit": 0}, "Input should be greater than or equal to 1"),
        ("/api/unigrams", {"limit": 1001}, "Input should be less than or equal to 1000"),
        ("/api/hashtags", {"window": "2m"}, "Input should be 'all', '5m', '15m', '1h' or '24h'"),
        ("/api/timeline", {"minutes": 0}, "Input should be greater than or equal to 1"),
        (
            "/api/timeline",
            {"hashtag": [str(i) for i in range(11)]},
            "List should have at most 10 items after validation, not 11",
        ),
        ("/api/trending", {"limit": 21}, "Input should be less than or equal to 20"),
    ],
)
def test_bad_parameters_are_a_readable_422(client, path, params, message):
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert [d["msg"] for d in r.json()["detail"]] == [message]


def test_sql_shaped_input_is_only_data(client):
    evil = "x' OR '1'='1'; DROP TABLE hashtag_counts; --"
    tl = client.get("/api/timeline", params={"hashtag": evil, "minutes": 3}).json()
    assert tl["series"] == [{"hashtag": evil.lower(), "counts": [0, 0, 0]}]
    assert client.get("/api/hashtags", params={"limit": 1}).json() == [{"hashtag": "covid", "count": 10}]


def test_every_endpoint_is_in_the_openapi_schema(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/api/hashtags",
        "/api/unigrams",
        "/api/timeline",
        "/api/trending",
        "/api/stats",
        "/api/stream",
        "/healthz",
        "/metrics",
    } <= paths


def test_metrics_count_requests_by_route(client):
    client.get("/api/hashtags")
    text = client.get("/metrics").text
    assert 'api_requests_total{route="/api/hashtags",status="200"}' in text


def test_per_minute_rows_are_pruned_past_the_retention(api_db):
    with connect(api_db, "pipeline", "pipeline_db_password") as conn:
        # the default keeps 25 hours: the fixture's row of two days before was pruned when post_stats was written
        assert conn.execute("SELECT count(*) FROM hashtag_minute_counts WHERE hashtag = 'a'").fetchone() == (0,)
        conn.execute("UPDATE retention SET keep = interval '3 days' WHERE name = 'minute_counts'")
        conn.execute("INSERT INTO hashtag_minute_counts VALUES (%s, 'a', 3)", (NEWEST_MINUTE - 2 * 1440 * MIN,))
        conn.execute("UPDATE post_stats SET newest_event_ms = %s WHERE stat = 'all'", (NEWEST,))
        assert conn.execute("SELECT count(*) FROM hashtag_minute_counts WHERE hashtag = 'a'").fetchone() == (1,)
        conn.execute("UPDATE retention SET keep = interval '1 day' WHERE name = 'minute_counts'")
        conn.execute("UPDATE post_stats SET newest_event_ms = %s WHERE stat = 'all'", (NEWEST,))
        assert conn.execute("SELECT count(*) FROM hashtag_minute_counts WHERE hashtag = 'a'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM hashtag_minute_counts").fetchone() == (4,)


def test_nul_in_a_hashtag_parameter_is_harmless(client):
    tl = client.get("/api/timeline", params={"hashtag": "co\x00vid", "minutes": 1}).json()
    assert tl["series"] == [{"hashtag": "covid", "counts": [2]}]


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js", "/api/hashtags", "/api/stats", "/healthz"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_the_page_runs_no_inline_script():
    """What the CSP forbids, the page does not need: scripts are files, no on* attributes."""
    html = (REPO / "web" / "static" / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == [] and "style=" not in html


def test_one_live_stream_too_many_gets_a_clear_503(client):
    """The cap (API_MAX_STREAMS, 2,000 by default), checked with a cap of 0."""
    broadcast = client.app.state.broadcast
    cap, broadcast.max_streams = broadcast.max_streams, 0
    try:
        r = client.get("/api/stream")
    finally:
        broadcast.max_streams = cap
    assert r.status_code == 503
    assert r.json() == {"detail": "too many live streams open (0); try again later"}
    assert r.headers["retry-after"] == "30"
