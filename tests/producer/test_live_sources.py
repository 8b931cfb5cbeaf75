"""The live sources through the real CLI, from local stand-ins of the X API and Jetstream
into the real broker: the same Avro record as every other source."""

from __future__ import annotations

import json

from tests.producer.mocks import FAST_BACKOFF as FAST_SETTINGS
from tests.producer.mocks import Connection, MockJetstream, MockX, Session, jetstream_post, stream_frame, tweet

from .conftest import consume, producer_env, report, run_cli

FAST_BACKOFF = {f"PRODUCER_{name.upper()}": str(value) for name, value in FAST_SETTINGS.items()}


def test_bluesky_to_kafka(topic, registry, tmp_path):
    frames = [
        json.dumps(jetstream_post(1, "Le vaccin arrive #santé", langs=["fr"], tags=["santé"])),
        "{oops",
        json.dumps(jetstream_post(2, "off topic", langs=["fr"])),
        json.dumps(jetstream_post(3, "Encore le covid", langs=["fr"], tags=["confinement"])),
    ]
    with MockJetstream([Session(frames=frames)]) as server:
        out = run_cli(
            ["bluesky", "--max-posts", "2", "-k", "covid", "-k", "vaccin", "-l", "fr"],
            producer_env(topic, tmp_path, PRODUCER_BLUESKY_URL=server.url, **FAST_BACKOFF),
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    text = report(out)
    assert f"sent 2 posts to '{topic}'" in text and "rejected 1 messages" in text
    records = consume(topic, registry, 2)
    assert sorted((v["id"], v["text"], v["source"], v["lang"]) for _, v, _ in records) == [
        ("at://did:plc:testuser/app.bsky.feed.post/3l3qo2vuowo01", "Le vaccin arrive #santé", "bluesky", "fr"),
        ("at://did:plc:testuser/app.bsky.feed.post/3l3qo2vuowo03", "Encore le covid #confinement", "bluesky", "fr"),
    ]


def test_x_stream_to_kafka(topic, registry, tmp_path):
    token = "cli-test-token-0123456789"
    rule = "1500000000000000001"
    script = [
        Connection(status=429, body={"title": "ConnectionException", "connection_issue": "TooManyConnections"}),
        Connection(frames=[stream_frame(tweet(1, "covid: nouvelles mesures"), [rule])], ending="abort"),
        Connection(frames=[stream_frame(tweet(2, "le vaccin #santé"), [rule])], ending="hold"),
    ]
    with MockX(script, token=token) as mock:
        out = run_cli(
            ["x-stream", "--max-posts", "2"],
            producer_env(topic, tmp_path, X_BEARER_TOKEN=token, PRODUCER_X_API_URL=mock.url, **FAST_BACKOFF),
            timeout=60,
        )
        assert [r["value"] for r in mock.rules.values()] == [
            '(covid OR vaccin OR "COVID-19" OR "corona virus") lang:fr'
        ]
    assert out.returncode == 0, out.stderr
    assert token not in out.stderr
    text = report(out)
    assert f"sent 2 posts to '{topic}'" in text and "rejected 0 messages" in text
    assert "HTTP 429" in text and "reconnecting" in text
    records = consume(topic, registry, 2)
    assert sorted((k, v["text"], v["source"]) for k, v, _ in records) == [
        (tweet(1, "")["id"], "covid: nouvelles mesures", "x"),
        (tweet(2, "")["id"], "le vaccin #santé", "x"),
    ]


def test_x_without_token_says_what_to_do(topic, tmp_path):
    out = run_cli(["x-search"], producer_env(topic, tmp_path))
    assert out.returncode == 2 and "X_BEARER_TOKEN" in out.stderr
