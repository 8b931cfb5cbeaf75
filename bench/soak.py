"""Soak: the pipeline over a long run, segment by segment, then a JobManager kill.

    .venv/bin/python -m bench.pipeline_bench --soak --posts 2000000 --segment 200000

Each segment: its posts (long-tail by default) are produced into `tweets` as fast
as the broker takes them, and the segment's throughput is its posts / seconds
from its first produce until PostgreSQL's post_stats (stat 'all') reaches the
expected cumulative count. Recorded per segment: that throughput, the Flink
checkpoints triggered meanwhile (end-to-end duration p50/p99/max, state size,
bytes written), the TaskManager's memory (PSS of its process tree, JVM heap
used), CPU seconds of every service, the rows the sink wrote to the count
tables (pg_stat_user_tables: inserted + updated + deleted) and the tables'
row counts and sizes at the end. The posts count is verified exactly after
each segment; every hashtag's and word's all-time count at the end (against
the reference implementation, reference/__init__.py, on top of what the tables
held before).

Then, while posts keep arriving at a steady rate, the Flink JobManager is
killed (`kill -9` of its process group, as a crashed container); the stack's
supervisor restarts it and resubmits the job from its newest checkpoint. The
time until counting resumes is from the kill until post_stats grows past the
value it stays at while the job is away.

Reference counting of a segment's posts happens after the segment is timed,
while the pipeline is idle, so it never competes with it for the CPU.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import uuid
from collections import Counter

import reference
from producer.config import ProducerSettings
from producer.writer import PostWriter
from stack import pipeline
from stack.processes import running_pid

from .common import FlinkSampler, ServiceSampler, db, percentile, posts_of, produce, wait_quiet

# The PostgreSQL tables the pipeline's counts fill: the ones the sink writes and the ones
# the database derives from them; rejected_posts is not a count. trending_hashtags is a
# view since pipeline version 3 (db/004_trending.sql: no statistics, no rows of its own);
# it stays listed so that every result keeps its key (0 rows written), as before.
COUNT_TABLES = (*pipeline.COUNT_TABLES, *pipeline.DERIVED_TABLES, "trending_hashtags")
STATS_SETTLE_S = 11  # PostgreSQL backends report table statistics at most ~10 s after their writes


def posts_counted(conn) -> int:
    row = conn.execute("SELECT posts FROM post_stats WHERE stat = 'all'").fetchone()
    return row[0] if row else 0


def table_writes(conn) -> dict[str, int]:
    rows = conn.execute(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = ANY(%s)",
        (list(COUNT_TABLES),),
    ).fetchall()
    return {name: n for name, n in rows}


def table_rows(conn) -> dict[str, dict]:
    """Rows and size of each count table (tables only: trending_hashtags may be a view, computed when read)."""
    out = {}
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s)", (list(COUNT_TABLES),)
        ).fetchall()
    }
    for t in (t for t in COUNT_TABLES if t in tables):
        n = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        size = conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
        out[t] = {"rows": n, "mib": round(size / 2**20, 1)}
    return out


def wait_counted(conn, target: int, timeout: float, label: str, t0: float | None = None) -> float | None:
    """Seconds (from t0) until post_stats reaches `target`; None on time-out. Prints progress."""
    t0 = t0 if t0 is not None else time.monotonic()
    last = time.monotonic()
    start_count = posts_counted(conn)
    while time.monotonic() - t0 < timeout:
        n = posts_counted(conn)
        if n >= target:
            return time.monotonic() - t0
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            print(
                f"  {label}: {n - start_count:,} more counted, {target - n:,} to go "
                f"({time.monotonic() - t0:.0f}s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        time.sleep(0.2)
    return None


def snapshot_counts(conn) -> tuple[dict, dict]:
    return (
        dict(conn.execute("SELECT hashtag, count FROM hashtag_counts").fetchall()),
        dict(conn.execute("SELECT word, count FROM unigram_counts").fetchall()),
    )


def compare(conn, before: tuple[dict, dict], tags: Counter, words: Counter) -> dict:
    t0 = time.monotonic()
    now_tags, now_words = snapshot_counts(conn)
    bad = [k for k in tags if now_tags.get(k) != before[0].get(k, 0) + tags[k]]
    out = {
        "hashtag_counts": {
            "keys": len(tags),
            "mismatched": len(bad),
            "examples": [{"key": k, "want": before[0].get(k, 0) + tags[k], "got": now_tags.get(k)} for k in bad[:3]],
        }
    }
    # the 1,000 most used words are kept: reference.top_mismatches says what that can check
    bad_words = reference.top_mismatches(before[1], now_words, words)
    out["unigram_counts"] = {
        "keys": len(now_words),
        "mismatched": len(bad_words),
        "examples": [{"key": k, "want_gain": e, "before": b, "got": a} for k, (e, b, a) in list(bad_words.items())[:3]],
    }
    out["exact"] = all(v["mismatched"] == 0 for v in out.values() if isinstance(v, dict))
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def count_reference(posts, tags: Counter, words: Counter) -> None:
    for p in posts:
        tags.update(reference.hashtags(p.text))
        words.update(reference.words(p.text))


class ResumeDetector:
    """When counting resumes after a kill, from (seconds since the kill, posts counted) samples.

    After the kill the count may still grow for a moment (the sink writes what the dead job had
    committed); then it stays flat (the plateau) until the restored job commits again. Counting has
    resumed at the first sample above the plateau, once the count was flat for `quiet` seconds; or,
    should the job be back sooner than that, at the first growth after the new job was seen running."""

    def __init__(self, at_kill: int, quiet: float = 5.0):
        self.quiet = quiet
        self.last_value, self.last_change = at_kill, 0.0
        self.plateau: int | None = None
        self.plateau_since: float | None = None
        self.job_base: int | None = None
        self.resumed: float | None = None

    @property
    def base(self) -> int | None:
        """The count that counting resumed from: the plateau, or the count when the new job was seen
        running (there is no plateau when the job is back before the count sat still for `quiet`)."""
        return self.plateau if self.plateau is not None else self.job_base

    def feed(self, t: float, n: int, job_running: bool = False) -> float | None:
        if self.resumed is not None:
            return self.resumed
        if job_running and self.job_base is None:
            self.job_base = self.last_value
        if n != self.last_value:
            if (self.plateau is not None and n > self.plateau) or (self.job_base is not None and n > self.job_base):
                self.resumed = t
            self.last_value, self.last_change = n, t
        elif self.plateau is None and t - self.last_change >= self.quiet:
            self.plateau, self.plateau_since = n, self.last_change
        return self.resumed


class Feeder(threading.Thread):
    """Posts at a steady rate into `tweets` until stopped; keeps what it sent."""

    def __init__(self, posts, rate: float):
        super().__init__(daemon=True)
        self.posts, self.rate = posts, rate
        self.sent: list = []
        self.stop_flag = threading.Event()
        self.writer = PostWriter(ProducerSettings(metrics_port=-1))

    def run(self):
        t0 = time.monotonic()
        for i, post in enumerate(self.posts):
            if self.stop_flag.is_set():
                break
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.writer.send(post)
            self.sent.append(post)
        self.writer.flush(60)

    def stop(self):
        self.stop_flag.set()
        self.join()


def jm_kill(conn, posts, rate: float, warmup: float = 15, after: float = 10, timeout: float = 300) -> tuple[dict, list]:
    """Kill -9 the Flink JobManager while posts flow at `rate`; seconds until counting resumes."""
    import httpx

    from stack.common import FLINK_URL
    from stack.pipeline import live_job

    if not running_pid("supervisor"):
        return {"skipped": "no supervisor runs (make up starts it): nothing would restart the JobManager"}, []
    pid = running_pid("flink-jobmanager")
    if not pid:
        return {"skipped": "the Flink JobManager is not running"}, []
    feeder = Feeder(posts, rate)
    feeder.start()
    print(f"jm kill: feeding {rate:,.0f} posts/s, {warmup:.0f}s before the kill", flush=True)
    time.sleep(warmup)
    old_job = (live_job() or {}).get("jid")
    at_kill = posts_counted(conn)
    t_kill = time.monotonic()
    os.killpg(pid, signal.SIGKILL)
    print(f"jm kill: killed JobManager pid {pid} at {at_kill:,} posts counted", flush=True)
    series: list[tuple[float, int]] = []
    detect = ResumeDetector(at_kill)
    jm_back, job_running, job_checkpoint, resumed, flowing = None, None, None, None, None
    next_rest = 0.0
    while time.monotonic() - t_kill < timeout:
        t = time.monotonic() - t_kill
        try:
            n = posts_counted(conn)
        except Exception:  # noqa: BLE001 - keep measuring
            n = detect.last_value
        series.append((round(t, 2), n))
        resumed = detect.feed(t, n, job_running is not None)
        if flowing is None and resumed is not None and n >= detect.base + rate:
            flowing = t  # a second's worth of posts counted again: the stream flows, not a trickle
        if t >= next_rest:
            next_rest = t + 1
            if jm_back is None and running_pid("flink-jobmanager") not in (None, pid):
                jm_back = t
            try:
                job = live_job()
                if job and job["jid"] != old_job:
                    if job_running is None and job["state"] == "RUNNING":
                        job_running = t
                    if job_checkpoint is None:
                        cp = httpx.get(f"{FLINK_URL}/jobs/{job['jid']}/checkpoints", timeout=3).json()
                        if cp.get("counts", {}).get("completed", 0) > 0:
                            job_checkpoint = t
            except Exception:  # noqa: BLE001 - the JobManager is away
                pass
        if flowing is not None and t - flowing >= after:
            break
        time.sleep(0.25)
    feeder.stop()
    print(
        f"jm kill: counting resumed after {resumed:.1f}s (a second's worth of posts counted after "
        f"{flowing if flowing is None else round(flowing, 1)}s)"
        if resumed is not None
        else f"jm kill: counting did not resume within {timeout:.0f}s",
        flush=True,
    )
    r = lambda v: round(v, 1) if v is not None else None  # noqa: E731
    return {
        "rate": rate,
        "posts_fed": len(feeder.sent),
        "counted_at_kill": at_kill,
        "plateau": detect.plateau,
        "plateau_reached_s": r(detect.plateau_since),
        "jobmanager_back_s": r(jm_back),
        "job_running_s": r(job_running),
        "first_checkpoint_s": r(job_checkpoint),
        "counting_resumed_s": r(resumed),
        "flowing_again_s": r(flowing),
        "series": series[::4],  # one point a second
    }, feeder.sent


def steady(posts, rate: float, seconds: float, flink: FlinkSampler) -> tuple[dict, list]:
    """Posts at a live stream's pace for `seconds`: the checkpoints of a pipeline that keeps
    up with its input, with all the state the soak built (the segments measure it flooded)."""
    feeder = Feeder(posts, rate)
    w0 = time.time()
    feeder.start()
    time.sleep(seconds)
    feeder.stop()
    w1 = time.time()
    cp = flink.window(w0, w1)
    print(
        f"steady: {len(feeder.sent):,} posts at {rate:,.0f} posts/s for {seconds:.0f} s: checkpoints p50/p99 "
        f"{cp['duration_p50_s']}/{cp['duration_p99_s']} s ({cp['completed']} done, {cp['failed']} failed)",
        flush=True,
    )
    return {"rate": rate, "seconds": seconds, "posts": len(feeder.sent), "checkpoints": cp}, feeder.sent


def soak(
    total: int,
    segment: int,
    data: str = "long-tail",
    *,
    seed: int | None = None,
    timeout: float = 1800,
    kill: bool = True,
    kill_rate: float = 1000,
    steady_seconds: float = 90,
    flink: FlinkSampler | None = None,
) -> dict:
    seed = seed if seed is not None else uuid.uuid4().int % 10**9
    run_id = uuid.uuid4().hex[:16]
    n_segments = -(-total // segment)
    # one stream of posts for the whole soak, event times spread over hours and ending now
    stream = posts_of(data, total, seed, run_id)
    print(f"soak: {total:,} {data} posts in {n_segments} segments of {segment:,} (seed {seed})", flush=True)
    own_flink = flink is None
    flink = flink or FlinkSampler()
    if own_flink:
        flink.start()
    conn = db()
    base = wait_quiet(conn)
    before = snapshot_counts(conn)
    tags, words = Counter(), Counter()
    segments = []
    done = 0
    writes_before = table_writes(conn)
    try:
        for s in range(n_segments):
            posts = list(itertools.islice(stream, min(segment, total - done)))
            sampler = ServiceSampler()
            sampler.start()
            wall0 = time.time()
            t0 = time.monotonic()
            produce_s = produce(posts)
            seconds = wait_counted(conn, base + done + len(posts), timeout, f"segment {s + 1}", t0)
            wall1 = time.time()
            cost = sampler.finish()
            done += len(posts)
            if seconds is None:
                print(f"soak: segment {s + 1} not counted within {timeout:.0f}s: stopping", flush=True)
            t_ref = time.monotonic()
            count_reference(posts, tags, words)
            ref_s = time.monotonic() - t_ref
            time.sleep(max(0.0, STATS_SETTLE_S - (time.monotonic() - (t0 + (seconds or 0)))))
            writes = table_writes(conn)
            rows = table_rows(conn)
            cp = flink.window(wall0, wall1)
            counted = posts_counted(conn) - base
            seg = {
                "segment": s + 1,
                "posts": len(posts),
                "cumulative_posts": done,
                "produce_seconds": round(produce_s, 2),
                "seconds": round(seconds, 2) if seconds else None,
                "posts_per_second": round(len(posts) / seconds) if seconds else None,
                "posts_count_exact": counted == done,
                "counted": counted,
                "checkpoints": cp,
                "tm_pss_peak_mib": cost["flink-taskmanager"]["peak_pss_mib"],
                "tm_pss_last_mib": cost["flink-taskmanager"]["last_pss_mib"],
                "rows_written": {t: writes.get(t, 0) - writes_before.get(t, 0) for t in COUNT_TABLES},
                "table_rows": rows,
                "cost": cost,
                "reference_seconds": round(ref_s, 1),
                "window": [round(wall0, 3), round(wall1, 3)],
            }
            seg["rows_written_total"] = sum(seg["rows_written"].values())
            writes_before = writes
            segments.append(seg)
            print(
                f"soak: segment {s + 1}/{n_segments}: {done:,} posts, "
                f"{seg['posts_per_second'] or 0:,} posts/s, checkpoints p50/p99 "
                f"{cp['duration_p50_s']}/{cp['duration_p99_s']} s ({cp['completed']} done, {cp['failed']} failed), "
                f"state {cp['state_size_mib']} MiB, TM PSS {seg['tm_pss_peak_mib']:,} MiB, "
                f"{seg['rows_written_total']:,} rows written, posts count exact: {seg['posts_count_exact']}",
                flush=True,
            )
            if seconds is None:
                break
        # the kill's posts: long-tail, event times at the pace they are sent (a live stream)
        live = posts_of(
            "long-tail", None, seed + 1, f"{run_id}k", start_ms=int(time.time() * 1000), posts_per_minute=kill_rate * 60
        )
        steady_result, fed_steady = {"skipped": "a segment was not counted in time"}, []
        if all(seg["seconds"] is not None for seg in segments) and steady_seconds > 0:
            steady_result, fed_steady = steady(live, kill_rate, steady_seconds, flink)
            count_reference(fed_steady, tags, words)
        if not kill:
            kill_result, fed = {"skipped": "--no-kill-jm"}, []
        elif any(seg["seconds"] is None for seg in segments):
            kill_result, fed = {"skipped": "a segment was not counted in time"}, []
        else:
            kill_result, fed = jm_kill(conn, live, kill_rate)
        if fed:
            count_reference(fed, tags, words)
            done_kill = wait_counted(conn, base + done + len(fed_steady) + len(fed), timeout, "after the kill")
            kill_result["caught_up"] = done_kill is not None
        t_verify = time.monotonic()
        expected = done + len(fed_steady) + len(fed)
        wait_counted(conn, base + expected, 120, "final")
        verify = compare(conn, before, tags, words)
        deadline = time.monotonic() + 60
        while not verify["exact"] and time.monotonic() < deadline:  # the sink may still be writing the last counts
            time.sleep(1)
            verify = compare(conn, before, tags, words)
        verify["posts_want"], verify["posts_got"] = expected, posts_counted(conn) - base
        verify["counts_exact"] = verify["exact"]  # every hashtag's and word's all-time count
        verify["posts_exact"] = verify["posts_want"] == verify["posts_got"]
        verify["exact"] = verify["counts_exact"] and verify["posts_exact"]
        verify["total_seconds"] = round(time.monotonic() - t_verify, 1)
    finally:
        if own_flink:
            flink.stop()
        conn.close()
    # the checkpoints of the segments (not of the kill's restart)
    all_cp = [
        c["duration_ms"] / 1000
        for c in flink.checkpoints.values()
        if c["duration_ms"] is not None
        and c["trigger_ms"]
        and any(w[0] <= c["trigger_ms"] / 1000 <= w[1] for w in (seg["window"] for seg in segments))
    ]
    fresh = segments[0]["posts_per_second"] if segments else None
    last = segments[-1]["posts_per_second"] if segments else None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "data": data,
        "seed": seed,
        "posts": done,
        "segment": segment,
        "segments": segments,
        "fresh_posts_per_second": fresh,
        "final_posts_per_second": last,
        "final_over_fresh": round(last / fresh, 3) if fresh and last else None,
        "checkpoint_p50_s": _r(percentile(all_cp, 0.5)),
        "checkpoint_p99_s": _r(percentile(all_cp, 0.99)),
        "checkpoint_max_s": _r(max(all_cp)) if all_cp else None,
        "steady": steady_result,
        "jm_kill": kill_result,
        "verify": verify,
    }


def _r(v):
    return round(v, 3) if v is not None else None
