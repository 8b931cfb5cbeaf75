"""End-to-end benchmark: the pipeline's throughput and freshness, beside the
original 2021 design and the broker's own limit, on the same machine and data.

    .venv/bin/python -m bench.pipeline_bench                  # 1,000,000 posts (make bench)
    .venv/bin/python -m bench.pipeline_bench --posts 20000    # a smaller run

Needs the stack running (`make up`); adds its synthetic posts (fresh ids) to
the stack's data. Prints numbers and writes bench/results/pipeline_bench.{json,md,png};
asserts nothing about time.

- pipeline: N synthetic posts produced as fast as possible into `tweets`; the
  time from the first produce until PostgreSQL's counts equal the expected
  counts (the reference implementation's, tests/reference.py) exactly.
- freshness: posts at a steady rate, each carrying one probe hashtag; the delay
  from a post's produce time to the moment /api/hashtags shows a count that
  includes it (p50, p95, p99).
- original design: what the 2021 project's consumer did, on the same Avro
  records: a plain Python consumer that tokenizes each post and updates
  PostgreSQL count tables per post (one upsert per token, a commit per post).
- limit: the same Avro records produced and consumed through the broker with no
  processing at all.
- cost: CPU seconds and peak memory (PSS) of each service during the pipeline run.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import typer
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.synthetic import synthetic_posts
from producer.writer import PostWriter
from stack.common import KAFKA, secret
from stack.stackctl import SERVICES, memory_mib, process_tree, running_pid
from tests import reference

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
API = "http://127.0.0.1:8000"
TICK = os.sysconf("SC_CLK_TCK")


def db(name: str = "tweetstream", user: str = "api_reader", pw: str = "api_db_password") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=5432, dbname=name, user=user, password=secret(pw), autocommit=True)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem,
            "os": platform.platform(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


class ServiceSampler(threading.Thread):
    """CPU seconds and peak PSS of each stack service (its process tree), sampled every second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_flag = threading.Event()
        self.peak: Counter = Counter()
        self.cpu_start = self.cpu_now()
        self.cpu: dict[str, float] = {}

    @staticmethod
    def cpu_now() -> dict[str, float]:
        out = {}
        for name in SERVICES:
            pid = running_pid(name)
            total = 0
            for p in process_tree(pid) if pid else []:
                try:
                    fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
                except (OSError, IndexError):
                    pass
            out[name] = total / TICK
        return out

    def run(self):
        while not self.stop_flag.wait(1.0):
            for name in SERVICES:
                pid = running_pid(name)
                if pid:
                    self.peak[name] = max(self.peak[name], memory_mib(pid))

    def finish(self) -> dict:
        self.stop_flag.set()
        self.join()
        end = self.cpu_now()
        return {name: {"cpu_seconds": round(end[name] - self.cpu_start.get(name, 0), 1),
                       "peak_pss_mib": round(self.peak[name])} for name in SERVICES}


def produce(posts: list[Post], topic: str = "tweets") -> float:
    writer = PostWriter(ProducerSettings(topic=topic, metrics_port=-1))
    t0 = time.monotonic()
    for post in posts:
        writer.send(post)
    assert writer.flush(120) == 0 and writer.stats.failed == 0, writer.stats
    return time.monotonic() - t0


def records(posts: list[Post]) -> list[dict]:
    return [{"id": p.id, "text": p.text, "created_at": p.created_at} for p in posts]


# --------------------------------------------------------------------------- pipeline

def pipeline_throughput(n: int, timeout: float) -> dict:
    seed = uuid.uuid4().int % 10**9
    posts = list(synthetic_posts(n, seed=seed))
    print(f"pipeline: reference counts for {n:,} posts...", flush=True)
    want_tags = reference.count_hashtags(records(posts))
    with db() as conn:
        before_posts = (conn.execute("SELECT coalesce(max(posts), 0) FROM post_stats").fetchone())[0]
        before = dict(conn.execute("SELECT hashtag, count FROM hashtag_counts").fetchall())
    want = {t: before.get(t, 0) + c for t, c in want_tags.items()}
    sampler = ServiceSampler()
    sampler.start()
    print(f"pipeline: producing {n:,} posts", flush=True)
    t0 = time.monotonic()
    produce_s = produce(posts)
    exact, done_s = False, None
    with db() as conn:
        while time.monotonic() - t0 < timeout:
            counted = conn.execute("SELECT coalesce(max(posts), 0) FROM post_stats").fetchone()[0] - before_posts
            if counted >= n:
                now = dict(conn.execute("SELECT hashtag, count FROM hashtag_counts").fetchall())
                if all(now.get(t) == c for t, c in want.items()):
                    exact, done_s = True, time.monotonic() - t0
                    break
            time.sleep(0.2)
    cost = sampler.finish()
    return {"posts": n, "produce_seconds": round(produce_s, 2), "end_to_end_seconds": round(done_s, 2) if done_s else None,
            "posts_per_second": round(n / done_s) if done_s else None, "counts_exact": exact, "cost": cost}


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
            writer.send(Post(id=f"{probe}-{i}", text=f"mesure de fraîcheur #{probe}", created_at=base + i, source="synthetic"))
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
    return {"rate": rate, "seconds": seconds, "posts": n, "seen": seen, "p50_s": pct(0.50), "p95_s": pct(0.95),
            "p99_s": pct(0.99), "max_s": round(delays[-1], 3) if delays else None}


# --------------------------------------------------------------------------- references

def _topic(name: str, partitions: int) -> str:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result()
    return name


def _drop_topic(name: str) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})  # referenced until the result is in
    admin.delete_topics([name])[name].result()


def original_design(n: int) -> dict:
    """The 2021 consumer: per post, tokenize and update the count tables, commit."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    run = uuid.uuid4().hex[:8]
    topic = _topic(f"bench_{run}_tweets", 1)
    dbname = f"bench_{run}"
    with db("postgres", "postgres", "postgres_password") as admin:
        admin.execute(f"CREATE DATABASE {dbname} OWNER pipeline")
    try:
        produce(list(synthetic_posts(n, seed=int(run, 16) % 10**9)), topic)
        with db(dbname, "pipeline", "pipeline_db_password") as conn:
            conn.execute("CREATE TABLE hashtags_table (hashtag text PRIMARY KEY, count bigint NOT NULL)")
            conn.execute("CREATE TABLE unigrams_table (word text PRIMARY KEY, count bigint NOT NULL)")
            conn.autocommit = False
            decode = AvroDeserializer(SchemaRegistryClient({"url": ProducerSettings().registry_url, "timeout": 10}),
                                      conf={"subject.name.strategy.type": "TOPIC"})
            consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"original-{run}", "auto.offset.reset": "earliest"})
            consumer.subscribe([topic])
            done, t0 = 0, None
            while done < n:
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                t0 = t0 or time.monotonic()
                post = decode(msg.value(), SerializationContext(topic, MessageField.VALUE))
                for tag in reference.hashtags(post["text"]):
                    conn.execute("INSERT INTO hashtags_table VALUES (%s, 1) ON CONFLICT (hashtag) "
                                 "DO UPDATE SET count = hashtags_table.count + 1", (tag,))
                for word in reference.words(post["text"]):
                    conn.execute("INSERT INTO unigrams_table VALUES (%s, 1) ON CONFLICT (word) "
                                 "DO UPDATE SET count = unigrams_table.count + 1", (word,))
                conn.commit()
                done += 1
            seconds = time.monotonic() - t0
            consumer.close()
    finally:
        with db("postgres", "postgres", "postgres_password") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        _drop_topic(topic)
    return {"posts": n, "seconds": round(seconds, 2), "posts_per_second": round(n / seconds)}


def broker_limit(n: int) -> dict:
    """The same Avro records produced and consumed with no processing."""
    run = uuid.uuid4().hex[:8]
    topic = _topic(f"bench_{run}_raw", 2)
    try:
        # encode once, through the producer's own serializer, outside the timing
        encoded_topic = _topic(f"bench_{run}_src", 2)
        produce(list(synthetic_posts(n, seed=int(run, 16) % 10**9)), encoded_topic)
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
        p = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "acks": "all", "compression.type": "lz4",
                      "linger.ms": 50, "batch.size": 1_000_000})
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
    return {"posts": n, "seconds": round(seconds, 2), "posts_per_second": round(n / seconds)}


# --------------------------------------------------------------------------- report

def bottleneck(cost: dict) -> str:
    """The stage that spent the most CPU in the throughput run: on 2 cores, the one that bounds it."""
    total = sum(c["cpu_seconds"] for c in cost.values()) or 1
    name, c = max(cost.items(), key=lambda item: item[1]["cpu_seconds"])
    return (f"Bottleneck: {name}, {c['cpu_seconds']} of {total:.0f} CPU seconds ({c['cpu_seconds'] / total:.0%}). "
            "README (Benchmarks) gives its profile and what would move it.")


def write_results(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    p, f, o, lim = result["pipeline"], result["freshness"], result["original_design"], result["broker_limit"]
    lines = [
        f"# Pipeline benchmark, {result['machine']['date']}",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['memory_mib']:,} MiB; the whole stack on it.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| pipeline, end to end ({p['posts']:,} posts, counts exact: {p['counts_exact']}) | "
        f"{format(p['posts_per_second'], ',') if p['posts_per_second'] else 'not reached in time'} posts/s |",
        f"| original 2021 design ({o['posts']:,} posts) | {o['posts_per_second']:,} posts/s |",
        f"| broker limit, produce + consume, no processing ({lim['posts']:,} posts) | {lim['posts_per_second']:,} posts/s |",
        f"| ratio pipeline / original | {result['ratios']['pipeline_over_original']} |",
        f"| ratio pipeline / limit | {result['ratios']['pipeline_over_limit']} |",
        f"| freshness at {f['rate']:,} posts/s: p50 / p95 / p99 | {f['p50_s']} s / {f['p95_s']} s / {f['p99_s']} s |",
        "",
        "| service | CPU seconds | peak memory (PSS) |",
        "|---|---|---|",
        *[f"| {name} | {c['cpu_seconds']} | {c['peak_pss_mib']} MiB |" for name, c in p["cost"].items()],
        f"| total | {sum(c['cpu_seconds'] for c in p['cost'].values()):.1f} | {sum(c['peak_pss_mib'] for c in p['cost'].values()):,} MiB |",
        "",
        bottleneck(p["cost"]),
    ]
    (out / "pipeline_bench.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG chart")
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    names = ["original 2021", "pipeline", "broker limit"]
    a.bar(names, [o["posts_per_second"], p["posts_per_second"] or 0, lim["posts_per_second"]], color=["#9aa3ad", "#1d4ed8", "#047857"])
    a.set_ylabel("posts/s")
    a.set_title("throughput (same data, same machine)")
    b.bar(["p50", "p95", "p99"], [f["p50_s"] or 0, f["p95_s"] or 0, f["p99_s"] or 0], color="#b45309")
    b.set_ylabel("seconds")
    b.set_title(f"freshness at {f['rate']:,} posts/s")
    fig.tight_layout()
    fig.savefig(out / "pipeline_bench.png", dpi=100)


def main(
    posts: int = typer.Option(1_000_000, help="posts for the pipeline's throughput run"),
    rate: int = typer.Option(1000, help="posts/s for the freshness run"),
    freshness_seconds: int = typer.Option(30, help="length of the freshness run"),
    original_posts: int = typer.Option(20_000, help="posts for the original design (it is slow)"),
    limit_posts: int = typer.Option(None, help="posts for the broker limit (default: as many as the pipeline's)"),
    timeout: float = typer.Option(1800, help="give up on the pipeline run after this many seconds"),
    out: Path = typer.Option(RESULTS, help="where the results go"),
) -> None:
    result = {"machine": machine()}
    print(json.dumps(result["machine"]))
    result["pipeline"] = pipeline_throughput(posts, timeout)
    print("pipeline:", json.dumps({k: v for k, v in result["pipeline"].items() if k != "cost"}), flush=True)
    result["freshness"] = freshness(rate, freshness_seconds)
    print("freshness:", json.dumps(result["freshness"]), flush=True)
    result["original_design"] = original_design(original_posts)
    print("original design:", json.dumps(result["original_design"]), flush=True)
    result["broker_limit"] = broker_limit(limit_posts or posts)
    print("broker limit:", json.dumps(result["broker_limit"]), flush=True)
    pps = result["pipeline"]["posts_per_second"] or 0
    result["ratios"] = {"pipeline_over_original": round(pps / result["original_design"]["posts_per_second"], 2),
                        "pipeline_over_limit": round(pps / result["broker_limit"]["posts_per_second"], 3)}
    print("ratios:", json.dumps(result["ratios"]))
    write_results(result, out)
    print(f"results in {out}/pipeline_bench.{{json,md,png}}")


if __name__ == "__main__":
    typer.run(main)
