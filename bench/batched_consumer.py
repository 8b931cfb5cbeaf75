"""The batched Python consumer: what a user would write instead of the pipeline.

One plain Python process reads the Avro topic (Confluent wire format, schemas
from the registry by id, fastavro's schemaless decoder), drops repeated post
ids (a set), tokenizes each post with the counting rules (the same regular
expressions and stopwords as reference/__init__.py; `tokenize` gives exactly
reference.hashtags() and reference.words()), counts hashtags and words all
time and per minute of event time in memory (Counters), and once a second
writes the absolute counts of the keys that changed to PostgreSQL tables of
its own, shaped like the serving tables (same keys, same indexes), in one
transaction from a second thread (so that counting goes on meanwhile): keys
never written before are COPied straight into their table, the others COPied
into a temporary table and applied with one `UPDATE ... FROM` per table (2.5x
faster than `INSERT ... ON CONFLICT` for the new keys, which are most of the
per-minute rows); the Kafka offsets are committed after each database commit.

    .venv/bin/python -m bench.batched_consumer --topic T --posts N               # T holds N posts already
    .venv/bin/python -m bench.batched_consumer --topic T --posts N --fill long-tail --drop-topic
                                                  # create T, fill it with N long-tail posts, count, verify, delete T

The rate is posts consumed / seconds from the first record received until the
last upsert (of all N) is committed. `verify` then reads the topic again and
compares every table with the reference implementation's counts, exactly.
Tables go to the database `bench_baseline` (created when missing, owned by the
`pipeline` role), in a schema of the run's own, dropped at the end unless
`--keep`.

What it does not do, unlike the pipeline: survive its own restart without
recounting (the id set and counters live in memory; offsets are committed
after the database, so a crash re-reads at most a second of posts, which the
lost id set can no longer recognise), bound its memory (every id and every
per-minute key stays), trending windows, rejected-record bookkeeping.
"""

from __future__ import annotations

import io
import json
import os
import time
import unicodedata
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

import reference
from producer.config import ProducerSettings
from stack.common import KAFKA

from .common import admin_db, create_topic, db, drop_topic, posts_of, produce

DATABASE = "bench_baseline"

# ---------------------------------------------------------------- the counting rules, once per post

_URL, _HASHTAG, _TAG_OR_MENTION, _WORD = reference.URL, reference.HASHTAG, reference.TAG_OR_MENTION, reference.WORD
_LETTER, _MARK, _STOPWORDS = reference.LETTER, reference.MARK, reference.STOPWORDS
_MAX = getattr(reference, "MAX_TOKEN", 10**9)
_is_nfc, _nfc = unicodedata.is_normalized, unicodedata.normalize


def tokenize(text: str) -> tuple[list[str], list[str]]:
    """(reference.hashtags(text), reference.words(text)), normalising and blanking URLs once
    and skipping the substitutions that cannot match (no '#', no '@', no link)."""
    if not _is_nfc("NFC", text):
        text = _nfc("NFC", text)
    if "http" in text or "www." in text:
        text = _URL.sub(" ", text)
    if "#" in text:
        tags = [t.lower() for t in _HASHTAG.findall(text) if len(t) <= _MAX and _LETTER.search(t)]
        text = _TAG_OR_MENTION.sub(" ", text)
    else:
        tags = []
        if "@" in text:
            text = _TAG_OR_MENTION.sub(" ", text)
    words = [
        w
        for w in (x.lower() for x in _WORD.findall(text) if len(x) <= _MAX)
        # a word of letters only (no combining mark) is its own length
        if w not in _STOPWORDS and (len(w) >= 2 if w.isalpha() else len(_MARK.sub("", w)) >= 2)
    ]
    return tags, words


# ---------------------------------------------------------------- Confluent wire format


class Decoder:
    """Magic byte 0, 4-byte schema id, Avro body: decoded with the writer's schema (from the registry, cached)."""

    def __init__(self, registry_url: str | None = None):
        self.registry = SchemaRegistryClient({"url": registry_url or ProducerSettings().registry_url, "timeout": 10})
        self.schemas: dict[int, dict] = {}

    def schema(self, schema_id: int):
        if schema_id not in self.schemas:
            self.schemas[schema_id] = parse_schema(json.loads(self.registry.get_schema(schema_id).schema_str))
        return self.schemas[schema_id]

    def __call__(self, value: bytes | None) -> dict:
        if not value or len(value) < 5 or value[0] != 0:
            raise ValueError("not in the Confluent wire format")
        buf = io.BytesIO(value)
        buf.seek(5)
        return schemaless_reader(buf, self.schema(int.from_bytes(value[1:5], "big")))


# ---------------------------------------------------------------- tables

TABLES_SQL = """
CREATE TABLE {s}.hashtag_counts (hashtag text PRIMARY KEY, count bigint NOT NULL);
CREATE INDEX ON {s}.hashtag_counts (count DESC, hashtag COLLATE "C");
CREATE TABLE {s}.unigram_counts (word text PRIMARY KEY, count bigint NOT NULL);
CREATE INDEX ON {s}.unigram_counts (count DESC, word COLLATE "C");
CREATE TABLE {s}.hashtag_minute_counts (minute_ms bigint NOT NULL, hashtag text NOT NULL, count bigint NOT NULL,
                                        PRIMARY KEY (minute_ms, hashtag));
CREATE INDEX ON {s}.hashtag_minute_counts (hashtag, minute_ms);
CREATE TABLE {s}.unigram_minute_counts (minute_ms bigint NOT NULL, word text NOT NULL, count bigint NOT NULL,
                                        PRIMARY KEY (minute_ms, word));
CREATE TABLE {s}.post_stats (stat text PRIMARY KEY, posts bigint NOT NULL, newest_event_ms bigint);
"""
# (table, key columns): the serving tables' shapes
COUNT_TABLES = (
    ("hashtag_counts", ("hashtag",)),
    ("unigram_counts", ("word",)),
    ("hashtag_minute_counts", ("minute_ms", "hashtag")),
    ("unigram_minute_counts", ("minute_ms", "word")),
)


def ensure_database(name: str = DATABASE) -> None:
    with admin_db() as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}" OWNER pipeline')


def connect(database: str = DATABASE) -> psycopg.Connection:
    return db(database, "pipeline")


def create_tables(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(f"CREATE SCHEMA {schema}")
    for statement in TABLES_SQL.format(s=schema).split(";"):
        if statement.strip():
            conn.execute(statement)


def drop_schema(database: str, schema: str) -> None:
    with connect(database) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def read_tables(conn: psycopg.Connection, schema: str) -> dict[str, dict]:
    out = {}
    for table, keys in COUNT_TABLES:
        rows = conn.execute(f"SELECT {', '.join(keys)}, count FROM {schema}.{table}").fetchall()
        out[table] = {(r[:-1] if len(keys) > 1 else r[0]): r[-1] for r in rows}
    row = conn.execute(f"SELECT posts FROM {schema}.post_stats WHERE stat = 'all'").fetchone()
    out["posts"] = row[0] if row else 0
    return out


# ---------------------------------------------------------------- the consumer


class Counts:
    """All-time and per-minute counts in memory, and what changed since the last flush (key: increment;
    a key whose count is its increment is new: never written yet)."""

    def __init__(self):
        self.seen: set[str] = set()
        self.posts = 0
        self.newest: int | None = None
        self.counters = {t: Counter() for t, _ in COUNT_TABLES}
        self.dirty = {t: Counter() for t, _ in COUNT_TABLES}

    def add(self, post_id: str, text: str, created_at: int, record_ms: int | None) -> None:
        if post_id in self.seen:
            return
        self.seen.add(post_id)
        self.posts += 1
        event = reference.event_ms(created_at, record_ms)
        if self.newest is None or event > self.newest:
            self.newest = event
        tags, words = tokenize(text)
        m = event - event % 60_000
        for tokens, table in ((tags, "hashtag"), (words, "unigram")):
            if tokens:
                keys = [(m, t) for t in tokens]
                for counter in (self.counters, self.dirty):
                    counter[f"{table}_counts"].update(tokens)
                    counter[f"{table}_minute_counts"].update(keys)


class Writer:
    """Writes the changed keys' absolute counts, one transaction: the keys never written before are
    COPied straight into their table (the fastest insert PostgreSQL has), the others COPied into a
    temporary table and applied with one UPDATE ... FROM per table. Runs in a thread of its own with
    its own connection, so that the consumer goes on decoding and counting while PostgreSQL works
    (one flush in flight at a time; the next one takes every key changed meanwhile)."""

    def __init__(self, conn: psycopg.Connection, schema: str):
        self.conn, self.schema = conn, schema
        conn.autocommit = False
        for table, _keys in COUNT_TABLES:
            conn.execute(f"CREATE TEMP TABLE tmp_{table} (LIKE {schema}.{table}) ON COMMIT DELETE ROWS")
        conn.commit()
        self.rows = 0
        self.inserted = 0
        self.flushes = 0
        self.seconds = 0.0
        self.max_seconds = 0.0

    @staticmethod
    def snapshot(counts: Counts) -> dict:
        """The rows to write (changed keys, absolute counts; new keys apart), taken in the consumer's thread."""
        batch = {}
        for table, keys in COUNT_TABLES:
            dirty, counter = counts.dirty[table], counts.counters[table]
            if not dirty:
                continue
            new, old = [], []
            if len(keys) == 1:
                for k, inc in dirty.items():
                    c = counter[k]
                    (new if c == inc else old).append((k, c))
            else:
                for k, inc in dirty.items():
                    c = counter[k]
                    (new if c == inc else old).append((*k, c))
            batch[table] = (new, old)
            dirty.clear()
        return {"rows": batch, "posts": counts.posts, "newest": counts.newest}

    def write(self, snap: dict) -> int:
        t0 = time.monotonic()
        rows = inserted = 0
        with self.conn.cursor() as cur:
            for table, keys in COUNT_TABLES:
                new, old = snap["rows"].get(table, ((), ()))
                cols = ", ".join((*keys, "count"))
                if new:
                    with cur.copy(f"COPY {self.schema}.{table} ({cols}) FROM STDIN") as copy:
                        write = copy.write_row
                        for row in new:
                            write(row)
                if old:
                    with cur.copy(f"COPY tmp_{table} ({cols}) FROM STDIN") as copy:
                        write = copy.write_row
                        for row in old:
                            write(row)
                    match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
                    cur.execute(f"UPDATE {self.schema}.{table} t SET count = s.count FROM tmp_{table} s WHERE {match}")
                rows += len(new) + len(old)
                inserted += len(new)
            cur.execute(
                f"INSERT INTO {self.schema}.post_stats VALUES ('all', %s, %s) ON CONFLICT (stat) "
                "DO UPDATE SET posts = EXCLUDED.posts, newest_event_ms = EXCLUDED.newest_event_ms",
                (snap["posts"], snap["newest"]),
            )
        self.conn.commit()
        took = time.monotonic() - t0
        self.rows += rows
        self.inserted += inserted
        self.flushes += 1
        self.seconds += took
        self.max_seconds = max(self.max_seconds, took)
        return rows


def run(
    topic: str,
    posts: int,
    *,
    database: str = DATABASE,
    schema: str | None = None,
    interval: float = 1.0,
    timeout: float = 1800,
    progress: bool = True,
) -> dict:
    """Consume `posts` records of `topic` from the start, counting, and upserting every `interval` seconds."""
    run_id = uuid.uuid4().hex[:8]
    schema = schema or f"batched_{run_id}"
    ensure_database(database)
    conn = connect(database)
    create_tables(conn, schema)
    writer = Writer(conn, schema)
    pool = ThreadPoolExecutor(1, thread_name_prefix="upserts")
    decode = Decoder()
    counts = Counts()
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"batched-{run_id}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    consumed = bad = 0
    offsets: dict[int, int] = {}
    pending = None  # (future of the flush in flight, the offsets it covers)
    t0 = last_flush = last_print = None
    cpu0 = os.times()
    deadline = time.monotonic() + timeout

    def settle(wait: bool) -> None:
        """When the flush in flight is committed in PostgreSQL, commit its offsets in Kafka."""
        nonlocal pending
        if pending and (wait or pending[0].done()):
            pending[0].result()
            if pending[1]:
                consumer.commit(
                    offsets=[TopicPartition(topic, p, o + 1) for p, o in pending[1].items()], asynchronous=False
                )
            pending = None

    def flush() -> None:
        nonlocal pending, last_flush
        last_flush = time.monotonic()
        pending = (pool.submit(writer.write, writer.snapshot(counts)), dict(offsets))

    try:
        while consumed < posts and time.monotonic() < deadline:
            batch = consumer.consume(10_000, 0.2)
            if batch and t0 is None:
                t0 = last_flush = last_print = time.monotonic()
            add = counts.add
            for msg in batch:
                if msg.error():
                    continue
                consumed += 1
                offsets[msg.partition()] = msg.offset()
                try:
                    post = decode(msg.value())
                    add(post["id"], post["text"], post["created_at"], msg.timestamp()[1])
                except (ValueError, KeyError, TypeError, EOFError, UnicodeDecodeError):
                    bad += 1  # not a post: skipped
            settle(wait=False)
            if t0 is not None:
                now = time.monotonic()
                if pending is None and now - last_flush >= interval:
                    flush()
                if progress and now - last_print >= 10:
                    last_print = now
                    print(
                        f"  batched consumer: {consumed:,}/{posts:,} records, {consumed / (now - t0):,.0f}/s, "
                        f"{writer.rows:,} rows upserted",
                        flush=True,
                    )
        settle(wait=True)
        flush()  # the rest
        settle(wait=True)
        seconds = time.monotonic() - t0 if t0 is not None else None
    finally:
        pool.shutdown(wait=True)
        consumer.close()
        conn.close()
    cpu1 = os.times()
    done = consumed >= posts
    return {
        "posts": posts,
        "consumed": consumed,
        "unique_posts": counts.posts,
        "bad_records": bad,
        "seconds": round(seconds, 2) if seconds else None,
        "posts_per_second": round(posts / seconds) if done and seconds else None,
        "flushes": writer.flushes,
        "flush_seconds_total": round(writer.seconds, 2),
        "flush_seconds_max": round(writer.max_seconds, 3),
        "rows_upserted": writer.rows,
        "rows_inserted": writer.inserted,
        "interval_s": interval,
        "cpu_seconds": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
        "keys_in_memory": {t: len(c) for t, c in counts.counters.items()},
        "database": database,
        "schema": schema,
    }


def expected_counts(topic: str, posts: int) -> dict:
    """The reference implementation's counts of the topic's first `posts` records (read again, in offset order)."""
    decode = Decoder()
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"verify-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    want = {t: Counter() for t, _ in COUNT_TABLES}
    seen: set[str] = set()
    read = 0
    try:
        while read < posts:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error():
                    continue
                read += 1
                try:
                    post = decode(msg.value())
                    pid, text = post["id"], post["text"]
                except (ValueError, KeyError, TypeError, EOFError, UnicodeDecodeError):
                    continue
                if pid in seen:
                    continue
                seen.add(pid)
                m = reference.minute(reference.event_ms(post["created_at"], msg.timestamp()[1]))
                tags, words = reference.hashtags(text), reference.words(text)
                want["hashtag_counts"].update(tags)
                want["unigram_counts"].update(words)
                want["hashtag_minute_counts"].update((m, t) for t in tags)
                want["unigram_minute_counts"].update((m, w) for w in words)
    finally:
        consumer.close()
    out = {t: dict(c) for t, c in want.items()}
    out["posts"] = len(seen)
    return out


def verify(topic: str, posts: int, database: str, schema: str) -> dict:
    """Every table of the run against the reference implementation: exact or not, and how many keys differ."""
    t0 = time.monotonic()
    want = expected_counts(topic, posts)
    with connect(database) as conn:
        got = read_tables(conn, schema)
    diff = {}
    for table, _ in COUNT_TABLES:
        w, g = want[table], got[table]
        bad = [k for k in w.keys() | g.keys() if w.get(k) != g.get(k)]
        diff[table] = {
            "keys": len(w),
            "mismatched": len(bad),
            "examples": [
                {"key": list(k) if isinstance(k, tuple) else k, "want": w.get(k), "got": g.get(k)} for k in bad[:3]
            ],
        }
    exact = all(d["mismatched"] == 0 for d in diff.values()) and want["posts"] == got["posts"]
    return {
        "exact": exact,
        "posts_want": want["posts"],
        "posts_got": got["posts"],
        "tables": diff,
        "seconds": round(time.monotonic() - t0, 1),
    }


def main(
    topic: str = typer.Option(..., help="the Avro topic to count (Confluent wire format, like tweets)"),
    posts: int = typer.Option(..., help="records to consume (the topic's size from its start)"),
    database: str = typer.Option(DATABASE, help="PostgreSQL database for the tables (created when missing)"),
    interval: float = typer.Option(1.0, help="seconds between upserts"),
    fill: str = typer.Option(None, help="first create the topic (2 partitions) and fill it: long-tail or synthetic"),
    seed: int = typer.Option(None, help="seed of the filled posts (default: random)"),
    drop_topic_after: bool = typer.Option(False, "--drop-topic", help="delete the topic at the end"),
    check: bool = typer.Option(True, "--verify/--no-verify", help="compare the tables with the reference counts"),
    keep: bool = typer.Option(False, help="keep the tables (schema) at the end"),
) -> None:
    try:
        if fill:
            create_topic(topic, 2)
            seed = seed if seed is not None else uuid.uuid4().int % 10**9
            print(f"filling {topic} with {posts:,} {fill} posts (seed {seed})", flush=True)
            produce(posts_of(fill, posts, seed), topic)
        result = run(topic, posts, database=database, interval=interval)
        print(json.dumps(result), flush=True)
        if check:
            result["verify"] = verify(topic, posts, database, result["schema"])
            print(json.dumps({"verify": result["verify"]}), flush=True)
        if not keep:
            drop_schema(database, result["schema"])
        else:
            print(f"tables kept in database {database}, schema {result['schema']}")
    finally:
        if drop_topic_after:
            drop_topic(topic)
    if check and not result["verify"]["exact"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
