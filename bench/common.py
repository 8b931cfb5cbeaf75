"""What the benchmark's parts share: database connections, producing posts, scratch
topics, the data sources, the per-service CPU and memory sampler."""

from __future__ import annotations

import itertools
import os
import platform
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic

from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.synthetic import synthetic_posts
from producer.writer import PostWriter
from stack.common import KAFKA, SERVING_DB, pg_connect
from stack.processes import memory_mib, process_tree, running_pid
from stack.services import SERVICES

from .longtail import long_tail_posts

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
API = "http://127.0.0.1:8000"
DATA_MODES = ("synthetic", "long-tail")


def db(name: str = SERVING_DB, user: str = "api_reader") -> psycopg.Connection:
    return pg_connect(user, name, connect_timeout=10)


def admin_db() -> psycopg.Connection:
    return pg_connect("postgres", "postgres", connect_timeout=10)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def posts_of(
    data: str, n: int | None, seed: int, run_id: str | None = None, start_ms: int | None = None, **long_tail
) -> Iterator[Post]:
    """`n` posts of a data mode: the project's synthetic generator (ids syn-<seed>-<n>: a random seed
    makes them fresh), or the long-tail one (ids lt-<run id>-<n>, event times ending now by default)."""
    if data == "synthetic":
        return synthetic_posts(n, seed=seed)
    if data == "long-tail":
        return long_tail_posts(n, seed=seed, run_id=run_id or uuid.uuid4().hex[:16], start_ms=start_ms, **long_tail)
    raise ValueError(f"unknown data mode {data!r} (one of {', '.join(DATA_MODES)})")


def produce(posts: Iterable[Post], topic: str = "tweets") -> float:
    """Send posts as fast as the broker takes them (the producer's own fast path); seconds until all acknowledged."""
    writer = PostWriter(ProducerSettings(topic=topic, metrics_port=-1))
    encode, send, topic = writer.fast_path()
    t0 = time.monotonic()
    sent = 0
    for post in posts:
        value, key = encode(post), post.id.encode()
        try:
            send(topic, value, key)
        except BufferError:
            writer.produce_when_room(value, key)
        sent += 1
        if sent % 1000 == 0:
            writer.poll(0)
    writer.stats.sent += sent
    assert writer.flush(300) == 0 and writer.stats.failed == 0, writer.stats
    return time.monotonic() - t0


def records(posts: Iterable[Post]) -> list[dict]:
    return [{"id": p.id, "text": p.text, "created_at": p.created_at} for p in posts]


def create_topic(name: str, partitions: int) -> str:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result()
    return name


def drop_topic(name: str) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})  # referenced until the result is in
    admin.delete_topics([name])[name].result()


class ServiceSampler(threading.Thread):
    """CPU seconds and peak PSS of each stack service (its process tree), sampled every second.
    `samples` keeps (seconds since start, {service: PSS MiB}) for plots."""

    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.stop_flag = threading.Event()
        self.peak: Counter = Counter()
        self.last: dict[str, float] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.t0 = time.monotonic()
        self.cpu_start = self.cpu_now()
        self.cpu: dict[str, float] = {}

    @staticmethod
    def cpu_now() -> dict[str, float]:
        out = {}
        for name in SERVICES:
            pid = running_pid(name)
            total = 0
            # the supervisor's children are the services it restarted: counted as themselves
            for p in (process_tree(pid) if name != "supervisor" else [pid]) if pid else []:
                try:
                    # its own CPU, and its children's that exited (PostgreSQL's backends of closed connections)
                    total += sum(psutil.Process(p).cpu_times()[:4])
                except psutil.Error:
                    pass
            out[name] = total
        return out

    def run(self):
        while not self.stop_flag.wait(self.interval):
            now = {}
            for name in SERVICES:
                pid = running_pid(name)
                if pid:
                    now[name] = memory_mib(pid, children=name != "supervisor")
                    self.peak[name] = max(self.peak[name], now[name])
            self.last = now
            self.samples.append((round(time.monotonic() - self.t0, 1), now))

    def finish(self) -> dict:
        self.stop_flag.set()
        self.join()
        end = self.cpu_now()
        # a service restarted during the run (a kill) starts its CPU count again: never negative
        return {
            name: {
                "cpu_seconds": round(max(0.0, end[name] - self.cpu_start.get(name, 0)), 1),
                "peak_pss_mib": round(self.peak[name]),
                "last_pss_mib": round(self.last.get(name, 0)),
            }
            for name in SERVICES
        }


def live_job(client) -> dict | None:
    """The pipeline's active Flink job (stack.pipeline.live_job, through a client that is reused)."""
    from stack import pipeline

    return pipeline.pick_live(pipeline.jobs(client))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class FlinkSampler(threading.Thread):
    """The pipeline job's checkpoints (every completed or failed one, by polling the
    REST history, which keeps only the last few) and the TaskManagers' JVM heap.

    Checkpoint entries: id, trigger time (epoch ms), end-to-end duration (ms),
    state size and checkpointed size (bytes; they differ with incremental checkpoints)."""

    def __init__(self, interval: float = 1.5):
        # the REST history keeps the last 10 checkpoints (20 s at one every 2 s): a poll every 1.5 s misses none;
        # the heap every other poll
        super().__init__(daemon=True)
        self.interval = interval
        self.stop_flag = threading.Event()
        self.checkpoints: dict[tuple[str, int], dict] = {}
        self.failed: dict[tuple[str, int], dict] = {}
        self.heap: list[tuple[float, float]] = []  # (epoch s, heap used MiB, summed over TaskManagers)
        self.errors = 0

    def _poll(self, client, heap: bool) -> None:
        from stack.common import FLINK_URL

        job = live_job(client)
        if job:
            hist = client.get(f"{FLINK_URL}/jobs/{job['jid']}/checkpoints", timeout=5).json().get("history", [])
            for cp in hist:
                key = (job["jid"], cp["id"])
                if cp.get("is_savepoint"):
                    continue
                entry = {
                    "job": job["jid"],
                    "id": cp["id"],
                    "trigger_ms": cp.get("trigger_timestamp"),
                    "duration_ms": cp.get("end_to_end_duration"),
                    "state_size": cp.get("state_size"),
                    "checkpointed_size": cp.get("checkpointed_size", cp.get("state_size")),
                }
                if cp.get("status") == "COMPLETED":
                    self.checkpoints[key] = entry
                elif cp.get("status") == "FAILED":
                    self.failed[key] = entry
        if not heap:
            return
        used = 0.0
        for tm in client.get(f"{FLINK_URL}/taskmanagers", timeout=5).json().get("taskmanagers", []):
            metrics = client.get(
                f"{FLINK_URL}/taskmanagers/{tm['id']}/metrics", params={"get": "Status.JVM.Memory.Heap.Used"}, timeout=5
            ).json()
            used += sum(float(m["value"]) for m in metrics if m.get("value") is not None)
        self.heap.append((time.time(), round(used / 2**20, 1)))

    def run(self):
        import httpx

        with httpx.Client() as client:
            for i in itertools.count():
                if self.stop_flag.is_set():
                    break
                try:
                    self._poll(client, heap=i % 2 == 0)
                except Exception:  # noqa: BLE001 - the JobManager may be away (a kill, a restart): try again
                    self.errors += 1
                self.stop_flag.wait(self.interval)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(10)

    def window(self, t0: float, t1: float) -> dict:
        """Statistics of the checkpoints triggered between epoch seconds t0 and t1."""
        lo, hi = t0 * 1000, t1 * 1000
        done = sorted(
            (c for c in self.checkpoints.values() if c["trigger_ms"] and lo <= c["trigger_ms"] <= hi),
            key=lambda c: c["trigger_ms"],
        )
        failed = [c for c in self.failed.values() if c["trigger_ms"] and lo <= c["trigger_ms"] <= hi]
        durations = [c["duration_ms"] / 1000 for c in done if c["duration_ms"] is not None]
        sizes = [c["state_size"] for c in done if c["state_size"] is not None]
        written = [c["checkpointed_size"] for c in done if c["checkpointed_size"] is not None]
        heap = [h for t, h in self.heap if t0 <= t <= t1]
        r = lambda v: round(v, 3) if v is not None else None  # noqa: E731
        return {
            "completed": len(done),
            "failed": len(failed),
            "duration_p50_s": r(percentile(durations, 0.50)),
            "duration_p99_s": r(percentile(durations, 0.99)),
            "duration_max_s": r(max(durations)) if durations else None,
            "state_size_mib": round(sizes[-1] / 2**20, 1) if sizes else None,
            "state_size_max_mib": round(max(sizes) / 2**20, 1) if sizes else None,
            "checkpointed_size_p50_mib": round(percentile(written, 0.5) / 2**20, 2) if written else None,
            "checkpointed_size_max_mib": round(max(written) / 2**20, 2) if written else None,
            "tm_heap_used_peak_mib": max(heap) if heap else None,
            "tm_heap_used_last_mib": heap[-1] if heap else None,
        }


def wait_quiet(conn, quiet: float = 4.0, timeout: float = 300) -> int:
    """Wait until the pipeline is idle (post_stats unchanged for `quiet` seconds: an earlier run's
    posts all counted), so that a snapshot of the tables is a fair 'before'. Returns the posts count."""

    def counted() -> int:
        row = conn.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone()
        return row[0] if row else 0

    t0 = time.monotonic()
    last, since = counted(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        n = counted()
        if n != last:
            last, since = n, time.monotonic()
    if time.monotonic() - t0 > quiet + 5:
        print(f"  waited {time.monotonic() - t0:.0f}s for the pipeline to count earlier posts", flush=True)
    return last
