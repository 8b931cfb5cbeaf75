"""End-to-end benchmark: the pipeline's throughput and freshness, beside three
baselines on the same machine and the same posts, a soak, a JobManager kill.

    .venv/bin/python -m bench.pipeline_bench                              # 1,000,000 synthetic posts (make bench)
    .venv/bin/python -m bench.pipeline_bench --posts 300000 --data long-tail --data synthetic
    .venv/bin/python -m bench.pipeline_bench --soak --posts 2000000 --segment 200000   # soak + JobManager kill
    .venv/bin/python -m bench.pipeline_bench --posts 3000 ...             # the smoke run of tests/e2e

Needs the stack running (`make up`); adds its posts (fresh ids) to the stack's
data. Prints progress and numbers, and writes bench/results/pipeline_bench.{json,md,png}
(a soak run replaces only the soak section of an earlier result, a throughput
run only the data modes it measured: each section carries its date). Asserts
nothing about time; the Markdown marks each of issue 12's goals met or missed.

Data (`--data`, repeatable): `synthetic`, the project's generator (~150 words,
30 hashtags: hot keys only), or `long-tail` (bench/longtail.py: tens of
thousands of French/English-like words and hashtags, Zipf popularity, event
times spread over hours of today, so the per-minute tables fill thousands of
rows a minute). Each data mode runs the pipeline and every baseline on the same
seed, i.e. the same posts.

- pipeline: N posts produced as fast as possible into `tweets`; the time from
  the first produce until PostgreSQL's all-time hashtag and word counts equal
  the expected ones exactly (what the tables held before, plus the reference
  implementation's counts, reference/__init__.py). For long-tail data the
  per-minute tables are then checked too. Flink's checkpoints during the run
  (duration, size) are recorded.
- batched consumer (bench/batched_consumer.py): what a user would write instead
  of the pipeline: one Python process, Avro decoding, a set of ids, Counters,
  an upsert of the changed keys once a second; its tables are checked against
  the reference exactly.
- original design: what the 2021 project's consumer did, on the same Avro
  records: a plain Python consumer that tokenizes each post and updates
  PostgreSQL count tables per post (one upsert per token, a commit per post).
- limit: the same Avro records produced and consumed through the broker with no
  processing at all.
- freshness: posts at a steady rate, each carrying one probe hashtag; the delay
  from a post's produce time to the moment /api/hashtags shows a count that
  includes it (p50, p95, p99).
- cost: CPU seconds and peak memory (PSS) of each service during the pipeline run.
- soak (`--soak`, bench/soak.py): segment by segment, throughput, checkpoint
  durations and size, TaskManager memory, rows written to PostgreSQL; exact
  counts at the end; then `kill -9` of the Flink JobManager while posts flow
  at `--rate`, and the seconds until counting resumes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import typer
from confluent_kafka import Consumer, Producer, TopicPartition

import reference
from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import PostWriter
from stack.common import KAFKA

from . import batched_consumer
from .common import (  # noqa: F401 - re-exported: earlier callers import them from here
    API,
    DATA_MODES,
    REPO,
    RESULTS,
    FlinkSampler,
    ServiceSampler,
    admin_db,
    db,
    load,
    machine,
    posts_of,
    produce,
    records,
    wait_quiet,
)
from .common import create_topic as _topic
from .common import drop_topic as _drop_topic

# --------------------------------------------------------------------------- pipeline


def _counts(conn, table: str, key: str) -> dict:
    return dict(conn.execute(f"SELECT {key}, count FROM {table}").fetchall())


def _posts_counted(conn) -> int:
    row = conn.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone()
    return row[0] if row else 0


def _minute_counts(conn, table: str, key: str, lo: int, hi: int) -> dict:
    rows = conn.execute(f"SELECT minute_ms, {key}, count FROM {table} WHERE minute_ms BETWEEN %s AND %s", (lo, hi))
    return {(m, k): c for m, k, c in rows.fetchall()}


def pipeline_throughput(
    n: int, timeout: float, data: str = "synthetic", seed: int | None = None, verify_minutes: bool | None = None
) -> dict:
    """N posts into `tweets` as fast as possible; seconds from the first produce until PostgreSQL's
    all-time hashtag and word counts equal the expected ones (what the tables held + the reference's)."""
    seed = seed if seed is not None else uuid.uuid4().int % 10**9
    posts = list(posts_of(data, n, seed))
    # per-minute counts are checked for long-tail data (event times of today; the synthetic posts' 2021
    # minutes are pruned by the tables' 7-day retention as soon as newer posts were counted)
    verify_minutes = data == "long-tail" if verify_minutes is None else verify_minutes
    print(f"pipeline ({data}): reference counts for {n:,} posts...", flush=True)
    want_tags, want_words, want_mtags, want_mwords = Counter(), Counter(), Counter(), Counter()
    for p in posts:  # ids are fresh: every post counts
        tags, words = reference.hashtags(p.text), reference.words(p.text)
        want_tags.update(tags)
        want_words.update(words)
        if verify_minutes:
            m = reference.minute(p.created_at)  # event time: created_at is never after the record's time here
            want_mtags.update((m, t) for t in tags)
            want_mwords.update((m, w) for w in words)
    lo = min(p.created_at for p in posts) // 60_000 * 60_000 if posts else 0
    hi = max(p.created_at for p in posts) if posts else 0
    with db() as conn:
        before_posts = wait_quiet(conn)
        before_tags, before_words = _counts(conn, "hashtag_counts", "hashtag"), _counts(conn, "unigram_counts", "word")
        if verify_minutes:
            before_mtags = _minute_counts(conn, "hashtag_minute_counts", "hashtag", lo, hi)
            before_mwords = _minute_counts(conn, "unigram_minute_counts", "word", lo, hi)
    want_tags_now = {t: before_tags.get(t, 0) + c for t, c in want_tags.items()}
    sampler, flink = ServiceSampler(), FlinkSampler()
    sampler.start()
    flink.start()
    print(f"pipeline ({data}): producing {n:,} posts (load {load()})", flush=True)
    wall0 = time.time()
    t0 = time.monotonic()
    produce_s = produce(posts)
    exact, done_s, last_print, counted = False, None, time.monotonic(), 0
    with db() as conn:
        while time.monotonic() - t0 < timeout:
            counted = _posts_counted(conn) - before_posts
            if counted >= n:
                now_tags = _counts(conn, "hashtag_counts", "hashtag")
                # words: the 1,000 most used are kept (reference.top_mismatches says what that can check)
                if all(now_tags.get(k) == c for k, c in want_tags_now.items()) and not reference.top_mismatches(
                    before_words, _counts(conn, "unigram_counts", "word"), want_words
                ):
                    exact, done_s = True, time.monotonic() - t0
                    break
            if time.monotonic() - last_print >= 10:
                last_print = time.monotonic()
                el = last_print - t0
                print(
                    f"  pipeline: {counted:,}/{n:,} posts counted, {counted / el:,.0f} posts/s so far ({el:.0f}s, "
                    f"load {load()})",
                    flush=True,
                )
            # once every post is counted, each check reads the whole count tables: not too often,
            # or the check itself slows the sink it waits for
            time.sleep(1 if counted >= n else 0.2)
        wall1 = time.time()
        cost = sampler.finish()
        flink.stop()
        minutes = None
        if verify_minutes and exact:
            minutes = _verify_minutes(conn, lo, hi, (before_mtags, want_mtags), (before_mwords, want_mwords))
    pps = round(n / done_s) if done_s else None
    print(
        f"pipeline ({data}): {pps or 0:,} posts/s, counts exact: {exact}"
        + (f", per-minute counts exact: {minutes['exact']}" if minutes else ""),
        flush=True,
    )
    return {
        "data": data,
        "seed": seed,
        "posts": n,
        "produce_seconds": round(produce_s, 2),
        "end_to_end_seconds": round(done_s, 2) if done_s else None,
        "posts_per_second": pps,
        "counts_exact": exact,
        "counted": counted,
        "distinct_hashtags": len(want_tags),
        "distinct_words": len(want_words),
        "minute_counts": minutes,
        "checkpoints": flink.window(wall0, wall1),
        "cost": cost,
    }


def _verify_minutes(conn, lo: int, hi: int, tags: tuple, words: tuple, timeout: float = 60) -> dict:
    """hashtag_minute_counts and unigram_minute_counts over the run's minutes: what they held + the
    reference's (for words, each minute keeps its 1,000 most used: reference.top_mismatches)."""
    t0 = time.monotonic()
    before_words, ref_words = _by_minute(words[0]), _by_minute(words[1])
    want_tags = {k: tags[0].get(k, 0) + c for k, c in tags[1].items()}
    while True:
        now_tags = _minute_counts(conn, "hashtag_minute_counts", "hashtag", lo, hi)
        bad = [(k, want_tags.get(k), now_tags.get(k)) for k, c in want_tags.items() if now_tags.get(k) != c]
        out = {
            "hashtag_minute_counts": {
                "keys": len(want_tags),
                "mismatched": len(bad),
                "examples": [{"key": list(k), "want": w, "got": g} for k, w, g in bad[:3]],
            }
        }
        now_words = _by_minute(_minute_counts(conn, "unigram_minute_counts", "word", lo, hi))
        bad = [
            ((m, w), e, a)
            for m in ref_words.keys() | now_words.keys()
            for w, (e, b, a) in reference.top_mismatches(
                before_words.get(m, {}), now_words.get(m, {}), ref_words.get(m, {}), reference.WORDS_PER_MINUTE
            ).items()
        ]
        out["unigram_minute_counts"] = {
            "keys": sum(map(len, now_words.values())),
            "mismatched": len(bad),
            "examples": [{"key": list(k), "want_gain": e, "got": a} for k, e, a in bad[:3]],
        }
        exact = all(v["mismatched"] == 0 for v in out.values())
        if exact or time.monotonic() - t0 > timeout:
            return {"exact": exact, **out, "seconds": round(time.monotonic() - t0, 1)}
        time.sleep(1)


def _by_minute(counts: dict) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for (m, w), n in counts.items():
        out.setdefault(m, {})[w] = n
    return out


def warm_up(n: int, data: str) -> dict:
    """N posts (a seed of their own) counted before anything is measured: a stack just started
    runs its JVMs' hot code interpreted until the JIT compiler has compiled it, which took the
    first ~40 s of a run on this machine; a pipeline that runs for days pays that once."""
    if n <= 0:
        return {"posts": 0}
    posts = list(posts_of(data, n, uuid.uuid4().int % 10**9))
    print(f"warm-up ({data}): {n:,} posts, not measured", flush=True)
    with db() as conn:
        before = wait_quiet(conn)
        t0 = time.monotonic()
        produce(posts)
        while _posts_counted(conn) < before + n and time.monotonic() - t0 < 600:
            time.sleep(0.5)
        seconds = time.monotonic() - t0
    print(f"warm-up: {n:,} posts counted in {seconds:.0f} s ({n / seconds:,.0f} posts/s)", flush=True)
    return {"data": data, "posts": n, "seconds": round(seconds, 1), "posts_per_second": round(n / seconds)}


def freshness(rate: int, seconds: int) -> dict:
    """Delay from produce to visibility at /api/hashtags of posts sent at a steady rate."""
    probe = f"fresh{uuid.uuid4().hex[:10]}"
    n = rate * seconds
    sent_at: list[float] = []
    writer = PostWriter(ProducerSettings(metrics_port=-1))
    base = int(time.time() * 1000)

    def feed():
        t0 = time.monotonic()
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            writer.send(
                Post(id=f"{probe}-{i}", text=f"mesure de fraîcheur #{probe}", created_at=base + i, source="synthetic")
            )
            sent_at.append(time.monotonic())
        writer.flush(60)

    feeder = threading.Thread(target=feed)
    feeder.start()
    delays: list[float] = []
    seen = 0
    deadline = time.monotonic() + seconds + 60
    with httpx.Client() as client:
        while seen < n and time.monotonic() < deadline:
            rows = client.get(f"{API}/api/hashtags", params={"limit": 1000}).json()
            count = next((r["count"] for r in rows if r["hashtag"] == probe), 0)
            now = time.monotonic()
            for i in range(seen, min(count, len(sent_at))):
                delays.append(now - sent_at[i])
            seen = max(seen, min(count, len(sent_at)))
            time.sleep(0.05)
    feeder.join()
    delays.sort()
    pct = lambda q: round(delays[min(len(delays) - 1, int(q * len(delays)))], 3) if delays else None  # noqa: E731
    return {
        "rate": rate,
        "seconds": seconds,
        "posts": n,
        "seen": seen,
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "p99_s": pct(0.99),
        "max_s": round(delays[-1], 3) if delays else None,
    }


# --------------------------------------------------------------------------- references


def original_design(n: int, data: str = "synthetic", seed: int | None = None) -> dict:
    """The 2021 consumer: per post, tokenize and update the count tables, commit."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    run = uuid.uuid4().hex[:8]
    topic = _topic(f"bench_{run}_tweets", 1)
    dbname = f"bench_{run}"
    with admin_db() as admin:
        admin.execute(f"CREATE DATABASE {dbname} OWNER pipeline")
    try:
        produce(posts_of(data, n, seed if seed is not None else int(run, 16) % 10**9), topic)
        with db(dbname, "pipeline") as conn:
            conn.execute("CREATE TABLE hashtags_table (hashtag text PRIMARY KEY, count bigint NOT NULL)")
            conn.execute("CREATE TABLE unigrams_table (word text PRIMARY KEY, count bigint NOT NULL)")
            conn.autocommit = False
            decode = AvroDeserializer(
                SchemaRegistryClient({"url": ProducerSettings().registry_url, "timeout": 10}),
                conf={"subject.name.strategy.type": "TOPIC"},
            )
            consumer = Consumer(
                {"bootstrap.servers": KAFKA, "group.id": f"original-{run}", "auto.offset.reset": "earliest"}
            )
            consumer.subscribe([topic])
            done, t0, last = 0, None, time.monotonic()
            while done < n:
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                t0 = t0 or time.monotonic()
                post = decode(msg.value(), SerializationContext(topic, MessageField.VALUE))
                for tag in reference.hashtags(post["text"]):
                    conn.execute(
                        "INSERT INTO hashtags_table VALUES (%s, 1) ON CONFLICT (hashtag) "
                        "DO UPDATE SET count = hashtags_table.count + 1",
                        (tag,),
                    )
                for word in reference.words(post["text"]):
                    conn.execute(
                        "INSERT INTO unigrams_table VALUES (%s, 1) ON CONFLICT (word) "
                        "DO UPDATE SET count = unigrams_table.count + 1",
                        (word,),
                    )
                conn.commit()
                done += 1
                if time.monotonic() - last >= 10:
                    last = time.monotonic()
                    print(f"  original design: {done:,}/{n:,} posts, {done / (last - t0):,.0f}/s", flush=True)
            seconds = time.monotonic() - t0
            consumer.close()
    finally:
        with admin_db() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        _drop_topic(topic)
    return {"data": data, "posts": n, "seconds": round(seconds, 2), "posts_per_second": round(n / seconds)}


def broker_limit(n: int, data: str = "synthetic", seed: int | None = None) -> dict:
    """The same Avro records produced and consumed with no processing."""
    run = uuid.uuid4().hex[:8]
    topic = _topic(f"bench_{run}_raw", 2)
    try:
        # encode once, through the producer's own serializer, outside the timing
        encoded_topic = _topic(f"bench_{run}_src", 2)
        produce(posts_of(data, n, seed if seed is not None else int(run, 16) % 10**9), encoded_topic)
        src = Consumer({"bootstrap.servers": KAFKA, "group.id": f"src-{run}", "auto.offset.reset": "earliest"})
        src.subscribe([encoded_topic])
        payloads = []
        while len(payloads) < n:
            msg = src.poll(1.0)
            if msg is not None and not msg.error():
                payloads.append((msg.key(), msg.value()))
        src.close()
        _drop_topic(encoded_topic)

        got = 0
        done = threading.Event()

        def consume():
            nonlocal got
            c = Consumer({"bootstrap.servers": KAFKA, "group.id": f"limit-{run}", "auto.offset.reset": "earliest"})
            c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
            while got < n:
                msgs = c.consume(10_000, 1.0)
                got += sum(1 for m in msgs if not m.error())
            c.close()
            done.set()

        reader = threading.Thread(target=consume)
        reader.start()
        p = Producer(
            {
                "bootstrap.servers": KAFKA,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": 50,
                "batch.size": 1_000_000,
            }
        )
        t0 = time.monotonic()
        for key, value in payloads:
            while True:
                try:
                    p.produce(topic, value=value, key=key)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        p.flush(120)
        done.wait(300)
        seconds = time.monotonic() - t0
        reader.join()
    finally:
        _drop_topic(topic)
    return {"data": data, "posts": n, "seconds": round(seconds, 2), "posts_per_second": round(n / seconds)}


def batched_baseline(n: int, data: str = "synthetic", seed: int | None = None, verify: bool = True) -> dict:
    """The batched Python consumer (bench/batched_consumer.py) on the same posts, from a topic of its own
    (2 partitions, like tweets, filled before the timing), tables in the database bench_baseline."""
    run = uuid.uuid4().hex[:8]
    topic = _topic(f"bench_{run}_batched", 2)
    seed = seed if seed is not None else int(run, 16) % 10**9
    try:
        produce(posts_of(data, n, seed), topic)
        print(f"batched consumer ({data}): {n:,} posts (load {load()})", flush=True)
        sampler = ServiceSampler()
        sampler.start()
        result = batched_consumer.run(topic, n)
        cost = sampler.finish()
        result["data"] = data
        result["postgres_cpu_seconds"] = cost["postgres"]["cpu_seconds"]
        if verify:
            result["verify"] = batched_consumer.verify(topic, n, result["database"], result["schema"])
        batched_consumer.drop_schema(result["database"], result["schema"])
    finally:
        _drop_topic(topic)
    print(
        f"batched consumer ({data}): {result['posts_per_second'] or 0:,} posts/s"
        + (f", counts exact: {result['verify']['exact']}" if verify else ""),
        flush=True,
    )
    return result


# --------------------------------------------------------------------------- goals and report

MIN_POSTS_FOR_GOALS = 100_000
MIN_POSTS_FOR_SOAK_GOAL = 1_000_000
GOALS = {
    "long_tail_pps": 3500,
    "long_tail_over_batched": 0.5,
    "synthetic_pps": 10_000,
    "soak_final_over_fresh": 0.8,
    "checkpoint_p99_s": 2.0,
    "jm_kill_resume_s": 30.0,
    "freshness_p99_s": 3.0,
}


def _ratio(a, b, digits=2):
    return round(a / b, digits) if a and b else None


def ratios(run: dict) -> dict:
    pps = run.get("pipeline", {}).get("posts_per_second") or 0
    return {
        "pipeline_over_batched": _ratio(pps, (run.get("batched_consumer") or {}).get("posts_per_second")),
        "pipeline_over_original": _ratio(pps, (run.get("original_design") or {}).get("posts_per_second")),
        "pipeline_over_limit": _ratio(pps, (run.get("broker_limit") or {}).get("posts_per_second"), 3),
    }


def _runs(result: dict) -> dict:
    """The throughput runs by data mode (a result of before long-tail data: its one synthetic run)."""
    if result.get("throughput"):
        return result["throughput"]
    if result.get("pipeline"):
        return {
            "synthetic": {
                k: result[k]
                for k in ("pipeline", "original_design", "broker_limit", "batched_consumer", "ratios")
                if k in result
            }
        }
    return {}


def ge(v, t):
    return v >= t


def le(v, t):
    return v <= t


def goals(result: dict) -> list[dict]:
    """The issue's goals, each met / missed / not measured, with the number."""
    out = []

    def goal(name, value, target, ok, unit="", note="", status=None):
        out.append(
            {
                "goal": name,
                "value": value,
                "target": f"{'≥' if ok is ge else '≤'} {target:,} {unit}".strip(),
                "unit": unit,
                "note": note,
                "status": status or ("not measured" if value is None else ("met" if ok(value, target) else "missed")),
            }
        )

    runs = _runs(result)
    lt, syn = runs.get("long-tail", {}), runs.get("synthetic", {})
    lt_p, syn_p = lt.get("pipeline", {}), syn.get("pipeline", {})

    def small(p):  # a smoke run's few posts say nothing about throughput
        return "indicative only" if p and p["posts"] < MIN_POSTS_FOR_GOALS else None

    goal(
        "long-tail end to end, posts/s",
        lt_p.get("posts_per_second") if lt_p.get("counts_exact") else None,
        GOALS["long_tail_pps"],
        ge,
        "posts/s",
        f"{lt_p['posts']:,} posts; the goal is at 300,000" if lt_p else "",
        small(lt_p),
    )
    goal(
        "long-tail pipeline / batched consumer",
        (lt.get("ratios") or {}).get("pipeline_over_batched"),
        GOALS["long_tail_over_batched"],
        ge,
        "x",
        "",
        small(lt_p),
    )
    goal(
        "synthetic end to end, posts/s",
        syn_p.get("posts_per_second") if syn_p.get("counts_exact") else None,
        GOALS["synthetic_pps"],
        ge,
        "posts/s",
        f"{syn_p['posts']:,} posts" if syn_p else "",
        small(syn_p),
    )
    soak = result.get("soak") or {}
    goal(
        "soak: throughput of the last segment / the first",
        soak.get("final_over_fresh"),
        GOALS["soak_final_over_fresh"],
        ge,
        "x",
        f"{soak['posts']:,} posts: {soak['final_posts_per_second']:,} vs {soak['fresh_posts_per_second']:,} posts/s; "
        "the goal is at 2,000,000"
        if soak.get("final_over_fresh")
        else "",
        "indicative only" if soak.get("final_over_fresh") and soak["posts"] < MIN_POSTS_FOR_SOAK_GOAL else None,
    )
    if soak.get("checkpoint_p99_s") is not None:
        cp, where = soak["checkpoint_p99_s"], f"soak, {soak['posts']:,} posts"
    else:
        cps = [
            r["pipeline"]["checkpoints"].get("duration_p99_s")
            for r in runs.values()
            if (r.get("pipeline") or {}).get("checkpoints")
        ]
        cps = [c for c in cps if c is not None]
        cp, where = (max(cps), "throughput runs (no soak measured)") if cps else (None, "")
    goal("checkpoint duration p99", cp, GOALS["checkpoint_p99_s"], le, "s", where)
    st = soak.get("steady") or {}
    if st.get("checkpoints"):
        goal(
            "checkpoint duration p99, keeping up with a live stream",
            st["checkpoints"]["duration_p99_s"],
            GOALS["checkpoint_p99_s"],
            le,
            "s",
            f"{st['rate']:,.0f} posts/s for {st['seconds']:.0f} s after the soak's {soak['posts']:,} posts; "
            f"{st['checkpoints']['completed']} checkpoints",
        )
    kill = soak.get("jm_kill") or {}
    resumed = kill.get("counting_resumed_s")
    never = bool(kill) and resumed is None and not kill.get("skipped")  # it did not resume within the wait
    goal(
        "JobManager kill -> counting again",
        resumed,
        GOALS["jm_kill_resume_s"],
        le,
        "s",
        kill["skipped"]
        if kill.get("skipped")
        else (
            f"at {kill['rate']:,.0f} posts/s; a second's worth of posts counted after "
            f"{_n(kill.get('flowing_again_s'))} s"
            if kill
            else ""
        )
        + ("; counting did not resume within the wait" if never else ""),
        "missed" if never else None,
    )
    f = result.get("freshness") or {}
    goal(
        "freshness p99 at 1,000 posts/s",
        f.get("p99_s"),
        GOALS["freshness_p99_s"],
        le,
        "s",
        f"measured at {f['rate']:,} posts/s" if f and f.get("rate") != 1000 else "",
        "indicative only" if f and f.get("rate") != 1000 else None,
    )
    return out


def bottleneck(cost: dict) -> str:
    """The stage that spent the most CPU in the throughput run: on 2 cores, the one that bounds it."""
    total = sum(c["cpu_seconds"] for c in cost.values()) or 1
    name, c = max(cost.items(), key=lambda item: item[1]["cpu_seconds"])
    return (
        f"Bottleneck: {name}, {c['cpu_seconds']} of {total:.0f} CPU seconds ({c['cpu_seconds'] / total:.0%}). "
        "README (Benchmarks) gives its profile and what would move it."
    )


def _n(v, unit=""):
    if v is None:
        return "not reached" if unit == "posts/s" else "–"
    return f"{v:,}{(' ' + unit) if unit else ''}"


def merge(old: dict | None, new: dict) -> dict:
    """A soak run replaces the soak section only; a throughput run replaces the data modes it
    measured and keeps an earlier run's others, and an earlier soak section (each carries its date)."""
    if not old:
        return new
    if new.get("soak") and not new.get("throughput"):
        merged = dict(old)
        merged["soak"] = new["soak"]
        merged.setdefault("machine", new["machine"])
        return merged
    merged = {**new, "throughput": {**old.get("throughput", {}), **new.get("throughput", {})}}
    if old.get("soak") and "soak" not in new:
        merged["soak"] = old["soak"]
    return merged


def report(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# Pipeline benchmark, {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB; the whole stack on it.",
        "",
    ]
    w = result.get("warmup") or {}
    if w.get("posts"):
        lines += [
            f"Before anything was measured, {w['posts']:,} {w['data']} posts were counted to warm the JVMs up "
            f"(`--warmup`): {w['seconds']} s, {w['posts_per_second']:,} posts/s.",
            "",
        ]
    g = result.get("goals") or goals(result)
    lines += ["## Goals (issue 12)", "", "| goal | measured | target | status |", "|---|---|---|---|"]
    for x in g:
        note = f" ({x['note']})" if x["note"] else ""
        value = "–" if x["status"] == "not measured" else _n(x["value"], x["unit"])
        lines.append(f"| {x['goal']}{note} | {value} | {x['target']} | **{x['status']}** |")
    lines.append("")
    for data, r in _runs(result).items():
        p, o, lim, b = r.get("pipeline", {}), r.get("original_design"), r.get("broker_limit"), r.get("batched_consumer")
        ra = r.get("ratios") or {}
        lines += [
            f"## Throughput, {data} data" + (f" (measured {r['measured']})" if r.get("measured") else ""),
            "",
            "| measure | value |",
            "|---|---|",
        ]
        if p:
            extra = (
                f"; {p['distinct_words']:,} distinct words, {p['distinct_hashtags']:,} hashtags"
                if p.get("distinct_words")
                else ""
            )
            lines.append(
                f"| pipeline, end to end ({p['posts']:,} posts, counts exact: {p['counts_exact']}{extra}) | "
                f"{_n(p.get('posts_per_second'), 'posts/s')} |"
            )
            if p.get("minute_counts"):
                mc = p["minute_counts"]
                lines.append(
                    f"| per-minute counts exact (hashtags, words: {mc['hashtag_minute_counts']['keys']:,} + "
                    f"{mc['unigram_minute_counts']['keys']:,} keys) | {mc['exact']} |"
                )
            cp = p.get("checkpoints") or {}
            if cp.get("completed"):
                lines.append(
                    f"| checkpoints during the run: p50 / p99 / max, state | {cp['duration_p50_s']} s / "
                    f"{cp['duration_p99_s']} s / {cp['duration_max_s']} s, {cp['state_size_mib']} MiB "
                    f"({cp['completed']} completed, {cp['failed']} failed) |"
                )
        if b:
            v = b.get("verify") or {}
            lines.append(
                f"| batched Python consumer ({b['posts']:,} posts, counts exact: {v.get('exact', 'not checked')}; "
                f"{b['flushes']} upserts of {b['rows_upserted']:,} rows) | {_n(b.get('posts_per_second'), 'posts/s')} |"
            )
        if o:
            lines.append(f"| original 2021 design ({o['posts']:,} posts) | {_n(o['posts_per_second'], 'posts/s')} |")
        if lim:
            lines.append(
                f"| broker limit, produce + consume, no processing ({lim['posts']:,} posts) | "
                f"{_n(lim['posts_per_second'], 'posts/s')} |"
            )
        for key, label in (
            ("pipeline_over_batched", "pipeline / batched consumer"),
            ("pipeline_over_original", "pipeline / original"),
            ("pipeline_over_limit", "pipeline / limit"),
        ):
            if ra.get(key) is not None:
                lines.append(f"| ratio {label} | {_n(ra[key])} |")
        lines.append("")
        if p.get("cost"):
            lines += [
                "| service | CPU seconds | peak memory (PSS) |",
                "|---|---|---|",
                *[f"| {name} | {c['cpu_seconds']} | {c['peak_pss_mib']:,} MiB |" for name, c in p["cost"].items()],
                f"| total | {sum(c['cpu_seconds'] for c in p['cost'].values()):.1f} | "
                f"{sum(c['peak_pss_mib'] for c in p['cost'].values()):,} MiB |",
                "",
                bottleneck(p["cost"]),
                "",
            ]
    f = result.get("freshness")
    if f:
        lines += [
            "## Freshness",
            "",
            f"At {f['rate']:,} posts/s for {f['seconds']} s ({f['seen']:,} of {f['posts']:,} seen): "
            f"p50 {f['p50_s']} s, p95 {f['p95_s']} s, p99 {f['p99_s']} s, max {f['max_s']} s.",
            "",
        ]
    soak = result.get("soak")
    if soak:
        lines += soak_report(soak)
    return "\n".join(lines) + "\n"


def soak_report(soak: dict) -> list[str]:
    v = soak.get("verify") or {}
    lines = [
        f"## Soak, {soak['posts']:,} {soak['data']} posts in segments of {soak['segment']:,} ({soak['date']})",
        "",
        f"Throughput: first segment {_n(soak['fresh_posts_per_second'], 'posts/s')}, last "
        f"{_n(soak['final_posts_per_second'], 'posts/s')} (ratio {_n(soak['final_over_fresh'])}). "
        f"Checkpoints over the soak: p50 {soak['checkpoint_p50_s']} s, p99 {soak['checkpoint_p99_s']} s, "
        f"max {soak['checkpoint_max_s']} s. At the end, every hashtag's all-time count and the top words' exact: "
        f"{v.get('counts_exact', v.get('exact'))} (checked in {v.get('seconds')} s); posts counted "
        f"{_n(v.get('posts_got'))} of {_n(v.get('posts_want'))} sent"
        + ("" if v.get("posts_exact", True) else " (more: posts someone else sent meanwhile; fewer: posts lost)")
        + "."
        + (
            f" Before the soak, {soak['warmup']['posts']:,} posts warmed the JVMs up ({soak['warmup']['seconds']} s)."
            if (soak.get("warmup") or {}).get("posts")
            else ""
        ),
        "",
        "| segment | posts | posts/s | checkpoints p50 / p99 / max (s) | failed | state (MiB) | written per checkpoint p50 (MiB) "
        "| TM PSS peak (MiB) | TM heap peak (MiB) | rows written | unigram_minute_counts rows | posts count exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in soak["segments"]:
        cp = s["checkpoints"]
        lines.append(
            f"| {s['segment']} | {s['cumulative_posts']:,} | {_n(s['posts_per_second'])} | "
            f"{cp['duration_p50_s']} / {cp['duration_p99_s']} / {cp['duration_max_s']} | {cp['failed']} | "
            f"{cp['state_size_mib']} | {cp['checkpointed_size_p50_mib']} | {s['tm_pss_peak_mib']:,} | "
            f"{cp['tm_heap_used_peak_mib']} | {s['rows_written_total']:,} | "
            f"{s['table_rows']['unigram_minute_counts']['rows']:,} | {s['posts_count_exact']} |"
        )
    st = soak.get("steady") or {}
    if st.get("checkpoints"):
        cp = st["checkpoints"]
        lines += [
            "",
            f"Then {st['posts']:,} posts at {st['rate']:,.0f} posts/s for {st['seconds']:.0f} s (a live stream's "
            f"pace, with the soak's state): checkpoints p50 {cp['duration_p50_s']} s, p99 "
            f"{cp['duration_p99_s']} s, max {cp['duration_max_s']} s ({cp['completed']} completed, "
            f"{cp['failed']} failed), written per checkpoint p50 {cp['checkpointed_size_p50_mib']} MiB.",
        ]
    k = soak.get("jm_kill") or {}
    lines.append("")
    if k.get("skipped"):
        lines.append(f"JobManager kill: skipped ({k['skipped']}).")
    elif k:
        lines.append(
            f"JobManager kill (`kill -9`) at {k['rate']:,.0f} posts/s: counting again after "
            f"{_n(k['counting_resumed_s'])} s, a second's worth of posts counted after "
            f"{_n(k.get('flowing_again_s'))} s (JobManager back after {_n(k['jobmanager_back_s'])} s, job running "
            f"after {_n(k['job_running_s'])} s, its first checkpoint after {_n(k['first_checkpoint_s'])} s); "
            f"{k['posts_fed']:,} posts sent meanwhile, all counted afterwards: {k.get('caught_up')}."
        )
    return lines + [""]


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG chart")
        return
    soak = result.get("soak")
    kill = (soak or {}).get("jm_kill") or {}
    runs = _runs(result)
    top = 1 if runs or result.get("freshness") else 0
    rows = top + (2 if soak else 0) + (1 if kill.get("series") else 0)
    if not rows:
        return
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4 * rows), squeeze=False)
    if top:
        _plot_throughput(result, runs, *axes[0])
    if soak:
        _plot_soak(soak, kill, fig, axes[top:], rows, top)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_throughput(result: dict, runs: dict, a, b) -> None:
    names = ["original 2021", "batched consumer", "pipeline", "broker limit"]
    keys = ["original_design", "batched_consumer", "pipeline", "broker_limit"]
    colors = ["#9aa3ad", "#b45309", "#1d4ed8", "#047857"]
    width = 0.8 / max(1, len(names))
    for i, (key, name, color) in enumerate(zip(keys, names, colors, strict=False)):
        xs, ys = [], []
        for j, r in enumerate(runs.values()):
            v = (r.get(key) or {}).get("posts_per_second")
            if v:
                xs.append(j + (i - 1.5) * width)
                ys.append(v)
        bars = a.bar(xs, ys, width, label=name, color=color)
        a.bar_label(bars, labels=[f"{y:,}" for y in ys], fontsize=7)
    a.set_xticks(range(len(runs)), [f"{d} data" for d in runs])
    a.set_yscale("log")
    a.set_ylim(bottom=10)
    a.set_ylabel("posts/s (log)")
    a.set_title("throughput (same data, same machine)")
    a.legend(fontsize=8)
    f = result.get("freshness") or {}
    b.bar(["p50", "p95", "p99"], [f.get("p50_s") or 0, f.get("p95_s") or 0, f.get("p99_s") or 0], color="#b45309")
    b.axhline(GOALS["freshness_p99_s"], color="red", linestyle="--", linewidth=1, label="goal p99")
    b.set_ylabel("seconds")
    b.set_title(f"freshness at {f.get('rate', 0):,} posts/s")
    b.legend(fontsize=8)


def _plot_soak(soak: dict, kill: dict, fig, axes, rows: int, top: int) -> None:
    import matplotlib.pyplot as plt

    segs = soak["segments"]
    x = [s["cumulative_posts"] / 1000 for s in segs]
    c, d = axes[0]
    c.plot(x, [s["posts_per_second"] or 0 for s in segs], marker="o", color="#1d4ed8")
    if soak.get("fresh_posts_per_second"):
        c.axhline(
            soak["fresh_posts_per_second"] * GOALS["soak_final_over_fresh"],
            color="red",
            linestyle="--",
            linewidth=1,
            label="80% of the first segment",
        )
        c.legend(fontsize=8)
    c.set_title("soak: throughput per segment")
    c.set_ylabel("posts/s")
    c.set_xlabel("posts counted (thousands)")
    c.set_ylim(bottom=0)
    d.plot(x, [s["checkpoints"]["duration_p50_s"] or 0 for s in segs], marker="o", label="p50")
    d.plot(x, [s["checkpoints"]["duration_p99_s"] or 0 for s in segs], marker="o", label="p99")
    d.axhline(GOALS["checkpoint_p99_s"], color="red", linestyle="--", linewidth=1, label="goal p99")
    d.set_ylabel("checkpoint duration (s)")
    d.set_xlabel("posts counted (thousands)")
    d2 = d.twinx()
    d2.plot(
        x,
        [s["checkpoints"]["state_size_mib"] or 0 for s in segs],
        color="#9aa3ad",
        linestyle=":",
        label="state size (MiB)",
    )
    d2.set_ylabel("state size (MiB)")
    d.set_title("soak: checkpoints")
    d.legend(fontsize=8, loc="upper left")
    d2.legend(fontsize=8, loc="upper right")
    e, g = axes[1]
    e.plot(x, [s["tm_pss_peak_mib"] for s in segs], marker="o", label="TaskManager PSS, peak")
    e.plot(x, [s["checkpoints"]["tm_heap_used_peak_mib"] or 0 for s in segs], marker="o", label="JVM heap used, peak")
    e.set_ylabel("MiB")
    e.set_xlabel("posts counted (thousands)")
    e.set_title("soak: TaskManager memory")
    e.set_ylim(bottom=0)
    e.legend(fontsize=8)
    bottom = [0] * len(segs)
    # a chart of a stored result, in its stacking order (most rows first): not derived from
    # stack.pipeline, whose tables may change after the result was made; the tops tables
    # (one row a minute, one row) are too few rows to show
    for t in (
        "unigram_minute_counts",
        "unigram_counts",
        "hashtag_minute_counts",
        "hashtag_counts",
        "trending_hashtags",
        "post_stats",
    ):
        vals = [s["rows_written"].get(t, 0) / 1000 for s in segs]
        g.bar(x, vals, width=(x[0] if x else 1) * 0.6, bottom=bottom, label=t)
        bottom = [u + v for u, v in zip(bottom, vals, strict=False)]
    g.set_ylabel("rows written (thousands)")
    g.set_xlabel("posts counted (thousands)")
    g.set_title("soak: rows written to PostgreSQL per segment")
    g.legend(fontsize=7)
    if kill.get("series"):
        h = plt.subplot2grid((rows, 2), (top + 2, 0), colspan=2, fig=fig)
        axes[2][0].remove()
        axes[2][1].remove()
        t, n = zip(*kill["series"], strict=False)
        h.plot(t, [v - kill["counted_at_kill"] for v in n], color="#1d4ed8")
        if kill.get("counting_resumed_s") is not None:
            h.axvline(
                kill["counting_resumed_s"],
                color="#047857",
                linestyle="--",
                label=f"counting again: {kill['counting_resumed_s']} s",
            )
        if kill.get("flowing_again_s") is not None:
            h.axvline(
                kill["flowing_again_s"],
                color="#b45309",
                linestyle="--",
                label=f"a second's worth of posts counted: {kill['flowing_again_s']} s",
            )
        h.axvline(GOALS["jm_kill_resume_s"], color="red", linestyle=":", label="goal: 30 s")
        h.set_xlabel("seconds since kill -9 of the JobManager")
        h.set_ylabel("posts counted since the kill")
        h.set_title(f"JobManager kill at {kill['rate']:,.0f} posts/s")
        h.legend(fontsize=8)


def write_results(result: dict, out: Path) -> dict:
    """JSON (merged with an earlier run's sections, see `merge`), Markdown and PNG."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pipeline_bench.json"
    old = None
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
    merged = merge(old, result)
    path.write_text(json.dumps(merged, indent=2) + "\n")  # first: a long run's numbers are never lost
    try:
        merged["goals"] = goals(merged)
        path.write_text(json.dumps(merged, indent=2) + "\n")
        (out / "pipeline_bench.md").write_text(report(merged))
        plot(merged, out / "pipeline_bench.png")
    except Exception as e:  # noqa: BLE001
        print(f"the report could not be written ({type(e).__name__}: {e}); the numbers are in {path}")
        merged.setdefault("goals", [])
    return merged


def main(
    posts: int = typer.Option(1_000_000, help="posts for the pipeline's throughput run (the soak's total with --soak)"),
    data: list[str] = typer.Option(
        None, help="synthetic or long-tail; repeat for both (default: synthetic; long-tail with --soak)"
    ),
    rate: int = typer.Option(1000, help="posts/s for the freshness run (and the JobManager kill)"),
    freshness_seconds: int = typer.Option(30, help="length of the freshness run"),
    original_posts: int = typer.Option(20_000, help="posts for the original design (it is slow; 0: skip)"),
    limit_posts: int = typer.Option(
        None, help="posts for the broker limit (default: as many as the pipeline's; 0: skip)"
    ),
    batched_posts: int = typer.Option(
        None, help="posts for the batched consumer (default: as many as the pipeline's; 0: skip)"
    ),
    soak: bool = typer.Option(False, "--soak", help="the soak instead: --posts in segments, then a JobManager kill"),
    segment: int = typer.Option(200_000, help="soak: posts per segment"),
    kill_jm: bool = typer.Option(True, "--kill-jm/--no-kill-jm", help="soak: kill -9 the JobManager at the end"),
    steady_seconds: float = typer.Option(
        90, help="soak: then posts at --rate for this long, the checkpoints of a pipeline that keeps up (0: skip)"
    ),
    warmup: int = typer.Option(
        50_000,
        help="posts counted before anything is measured, so that the JVMs have compiled "
        "their hot code (0: none: the figures then include a cold start)",
    ),
    timeout: float = typer.Option(1800, help="give up on a pipeline run (or a soak segment) after this many seconds"),
    out: Path = typer.Option(RESULTS, help="where the results go"),
) -> None:
    modes = list(dict.fromkeys(data or (["long-tail"] if soak else ["synthetic"])))
    for mode in modes:
        if mode not in DATA_MODES:
            raise typer.BadParameter(f"--data {mode}: one of {', '.join(DATA_MODES)}")
    result = {"machine": machine()}
    print(json.dumps(result["machine"]), flush=True)
    warm = warm_up(warmup, modes[0])
    if soak:
        from .soak import soak as run_soak

        result["soak"] = run_soak(
            posts, segment, modes[0], timeout=timeout, kill=kill_jm, kill_rate=rate, steady_seconds=steady_seconds
        )
        result["soak"]["warmup"] = warm
    else:
        result["warmup"] = warm
        result["throughput"] = {}
        for mode in modes:
            seed = uuid.uuid4().int % 10**9  # one seed per data mode: every baseline counts the same posts
            run = {"measured": time.strftime("%Y-%m-%d %H:%M")}
            run["pipeline"] = pipeline_throughput(posts, timeout, mode, seed)
            print("pipeline:", json.dumps({k: v for k, v in run["pipeline"].items() if k not in ("cost",)}), flush=True)
            if batched_posts != 0:
                run["batched_consumer"] = batched_baseline(batched_posts or posts, mode, seed)
                print("batched consumer:", json.dumps(run["batched_consumer"]), flush=True)
            if original_posts:
                run["original_design"] = original_design(original_posts, mode, seed)
                print("original design:", json.dumps(run["original_design"]), flush=True)
            if limit_posts != 0:
                run["broker_limit"] = broker_limit(limit_posts or posts, mode, seed)
                print("broker limit:", json.dumps(run["broker_limit"]), flush=True)
            run["ratios"] = ratios(run)
            print("ratios:", json.dumps(run["ratios"]), flush=True)
            result["throughput"][mode] = run
        result["freshness"] = freshness(rate, freshness_seconds)
        print("freshness:", json.dumps(result["freshness"]), flush=True)
        # the first data mode's numbers also at the top level, where earlier readers look for them
        first = result["throughput"][modes[0]]
        for key in ("pipeline", "original_design", "broker_limit", "batched_consumer", "ratios"):
            if key in first:
                result[key] = first[key]
    merged = write_results(result, out)
    for g in merged["goals"]:
        print(f"goal: {g['goal']}: {_n(g['value'], g['unit'])} (target {g['target']}): {g['status']}")
    print(f"results in {out}/pipeline_bench.{{json,md,png}}")


if __name__ == "__main__":
    typer.run(main)
