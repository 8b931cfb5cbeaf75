"""Posts are written by strangers: generated hostile posts (every Unicode
category but lone surrogates, control and bidi characters, texts up to and past
the 25,000-character limit, tokens around the 100-character limit, many tags in
one post, time stamps from 1970 to year 9999, duplicate ids, empty texts and
ids), written both by an independent Avro client straight to `tweets` and by
the replay producer's CLI, on the real stack.

Invariants: the Flink job never restarts; the sink task never fails and the
dead-letter topic does not grow; every good post is counted exactly as the
reference implementation counts it (all-time and per minute); every bad one is
set aside with its reason; no per-minute row within the retention disappears;
the newest event time never moves past the records' own time stamps."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter

import fastavro
import httpx
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from producer.post import Rejected, post_from_json_line
from stack import pipeline
from stack.common import FLINK_URL, KAFKA, REGISTRY_URL, REPO
from stack.sink import connector_status
from tests.install.test_tokenizer import known_to_java

from .conftest import dead_letters, serving_db, snapshot, wait_caught_up

SCHEMA = fastavro.parse_schema(json.loads((REPO / "schemas" / "post.avsc").read_text()))
# The independent writer's records carry this Kafka time stamp (2022-05-03): a
# created_at more than 5 minutes after it is replaced by it.
RECORD_MS = 1_651_600_000_000
YEAR_9999_MS = 253_402_300_799_999

chars = st.characters(exclude_categories=("Cs",)).filter(known_to_java)
specials = st.sampled_from(
    [
        "#",
        "@",
        "_",
        " ",
        "\u00a0",
        "\u202e",
        "\u200f",
        "\x00",
        "\x07",
        "\n",
        "'",
        "-",
        "\u0301",
        "é",
        "İ",
        "Σ",
        "🎉",
        "https://x.y/#z ",
        "www.a.b ",
    ]
)
piece = st.one_of(chars, specials, st.sampled_from(list("abcdeéàçxyz")))
texts = st.one_of(
    st.lists(piece, max_size=200).map("".join),
    # many tags in one post, some around the 100-character limit
    st.lists(st.text(st.sampled_from("aéb_1\u0301"), max_size=105), max_size=300).map(
        lambda ts: " ".join("#" + t for t in ts)
    ),
    # around the 25,000-character limit on texts
    st.integers(24_995, 25_005).map(lambda n: "mot " * (n // 4) + "x" * (n % 4)),
    st.just(""),
)
created = st.one_of(
    st.integers(0, RECORD_MS),
    st.integers(RECORD_MS, RECORD_MS + 10 * 60_000),
    st.integers(RECORD_MS, YEAR_9999_MS),
    st.just(YEAR_9999_MS),
)
posts = st.lists(
    st.tuples(st.sampled_from(["new", "new", "new", "dup", "noid"]), texts, created), min_size=1, max_size=25
)


def registry_schema_id() -> int:
    """The id of schemas/post.avsc under tweets-value (not the latest version: the
    schema-evolution tests register newer ones)."""
    r = httpx.post(
        f"{REGISTRY_URL}/apis/ccompat/v7/subjects/tweets-value",
        json={"schema": (REPO / "schemas" / "post.avsc").read_text()},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["id"]


def avro_value(schema_id: int, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, SCHEMA, record)
    return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()


def job_failures(job_id: str) -> int:
    return len(
        httpx.get(f"{FLINK_URL}/jobs/{job_id}/exceptions", timeout=10)
        .json()
        .get("exceptionHistory", {})
        .get("entries", [])
    )


def sink_states() -> list[str]:
    return [t["state"] for t in connector_status("serving-tables-sink")["tasks"]]


def expected_counts(good: list[dict]) -> dict[str, Counter]:
    """The reference's counts of the good posts (dicts with id, text, created_at = event ms)."""
    unique = reference.unique(good)
    return {
        "hashtags": reference.count_hashtags(unique),
        "words": reference.count_words(unique),
        "hashtag_minutes": reference.count_per_minute(unique, reference.hashtags),
        "word_minutes": reference.count_per_minute(unique, reference.words),
    }


def delta(before: Counter, after: Counter, keep=lambda k: True) -> dict:
    keys = {k for k in set(before) | set(after) if keep(k)}
    return {k: after[k] - before[k] for k in keys if after[k] != before[k]}


@pytest.fixture(scope="module")
def schema_id(stack):
    # the producer registers the schema; make sure it is there before writing without it
    from producer.config import ProducerSettings
    from producer.writer import PostWriter

    PostWriter(ProducerSettings(topic="tweets", metrics_port=-1))
    return registry_schema_id()


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=posts, replayed=posts)
def test_no_post_stops_freezes_or_empties_the_counting(quiet_pipeline, schema_id, tmp_path_factory, batch, replayed):
    run = uuid.uuid4().hex[:8]
    job = pipeline.live_job()
    failures_before, dlq_before = job_failures(job["jid"]), dead_letters()
    before = snapshot()
    with serving_db() as db:
        rejected_before = (db.execute("SELECT posts FROM post_stats WHERE stat = 'rejected'").fetchone() or [0])[0]
        newest_before = (db.execute("SELECT newest_event_ms FROM post_stats WHERE stat = 'all'").fetchone() or [None])[
            0
        ]

    # 1. an independent Avro client, straight to tweets, key = id, time stamp RECORD_MS
    good, bad = [], 0
    raw = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "message.max.bytes": 4_000_000})
    ids: list[str] = []
    sent: dict[str, tuple[str, int]] = {}
    for i, (kind, text, created_at) in enumerate(batch):
        if kind == "dup" and ids:
            pid = ids[0]
            text, created_at = sent[pid]  # a re-sent copy (a reconnect): the same post
        elif kind == "noid":
            pid = ""
        else:
            pid = f"hyp-{run}-{i}"
            ids.append(pid)
            sent[pid] = (text, created_at)
        record = {"id": pid, "text": text, "created_at": created_at, "author_id": None, "lang": None, "source": "test"}
        raw.produce("tweets", key=pid.encode(), value=avro_value(schema_id, record), timestamp=RECORD_MS)
        if pid == "" or len(text) > 25_000:
            bad += 1
        else:
            good.append({"id": pid, "text": text, "created_at": reference.event_ms(created_at, RECORD_MS)})
    assert raw.flush(60) == 0

    # 2. the replay producer's CLI, with the same kinds of posts (created_at up to RECORD_MS: the
    # producer's record time stamp is now, so none of them is replaced)
    lines = []
    for i, (kind, text, created_at) in enumerate(replayed):
        pid = "" if kind == "noid" else f"hypr-{run}-{0 if kind == 'dup' else i}"
        ms = min(created_at, RECORD_MS)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
        lines.append(json.dumps({"id": pid, "text": text, "created_at": iso}, ensure_ascii=False))
    path = tmp_path_factory.mktemp("replay") / f"hostile-{run}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "replay", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for line in lines:
        try:
            post = post_from_json_line(line)
        except Rejected:
            continue  # the producer kept it in its rejects file
        if len(post.text) > 25_000:
            bad += 1
            continue
        good.append({"id": post.id, "text": post.text, "created_at": post.created_at})

    wait_caught_up(timeout=300)
    after = snapshot()
    with serving_db() as db:
        # (no 'rejected' row until the first record is set aside)
        rejected_after = (db.execute("SELECT posts FROM post_stats WHERE stat = 'rejected'").fetchone() or [0])[0]
        newest_after = db.execute("SELECT newest_event_ms FROM post_stats WHERE stat = 'all'").fetchone()[0]
        keep_ms = int(
            db.execute("SELECT extract(epoch FROM keep) * 1000 FROM retention WHERE name = 'minute_counts'").fetchone()[
                0
            ]
        )

    # nothing stopped, restarted or was dead-lettered
    assert pipeline.live_job()["jid"] == job["jid"]
    assert job_failures(job["jid"]) == failures_before
    assert sink_states() == ["RUNNING"]
    assert dead_letters() == dlq_before

    # every good post counted exactly, every bad one set aside
    want = expected_counts(good)
    assert after["posts"]["all"] - before["posts"]["all"] == len(reference.unique(good))
    assert rejected_after - rejected_before == bad
    assert delta(before["hashtags"], after["hashtags"]) == {k: v for k, v in want["hashtags"].items()}
    # the all-time words keep the 1,000 most used (unigram_tops)
    assert reference.top_mismatches(before["words"], after["words"], want["words"]) == {}
    cutoff = newest_after - keep_ms
    # a minute keeps its 1,000 most used words (unigram_minute_tops): a minute that holds
    # fewer after the batch kept every word, exactly; a full one holds exactly 1,000
    words_per_minute = Counter(m for m, _ in after["word_minutes"])
    full = {m for m, n in words_per_minute.items() if n >= reference.WORDS_PER_MINUTE}
    assert max(words_per_minute.values(), default=0) <= reference.WORDS_PER_MINUTE
    for table in ("hashtag_minutes", "word_minutes"):

        def in_retention(key, table=table):
            return key[0] >= cutoff and (table == "hashtag_minutes" or key[0] not in full)

        assert delta(before[table], after[table], in_retention) == {
            k: v for k, v in want[table].items() if in_retention(k)
        }
        # no row within the retention disappeared
        assert not [k for k in before[table] if in_retention(k) and k not in after[table]]

    # no poster's clock moves event time into the future
    newest_good = max((p["created_at"] for p in good), default=None)
    assert newest_after == max(x for x in (newest_before, newest_good) if x is not None)
    assert newest_after <= max(RECORD_MS + 5 * 60_000, newest_before or 0, int(time.time() * 1000))
