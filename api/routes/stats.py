"""How much was counted, how fresh it is, what was set aside, whether the pipeline runs;
and a live stream (server-sent events) that tells the page when counts changed."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from stack import pipeline, progress

from ..core.config import settings
from ..deps import Conn
from ..progress import monitor

router = APIRouter(prefix="/api", tags=["stats"])


class Rejected(BaseModel):
    producer: int = Field(description="input lines the producer rejected (kept in its rejects files)")
    pipeline: int = Field(
        description="records of the topic tweets that were not valid posts, set aside "
        "by the pipeline (listed by /api/rejects)"
    )
    sink: int = Field(
        description="count rows the database would refuse (a key over 2,000 bytes), set aside "
        "instead of written (listed by /api/rejects/sink)"
    )
    dead_letter: int = Field(description=f"records the sink could not read (topic {settings.dead_letter_topic})")


class StageProgress(BaseModel):
    stage: str = Field(description="'flink job' (posts in tweets -> counts) or 'sink' (counts -> PostgreSQL)")
    state: str = Field(
        description="idle (nothing waits), moving, stalled (work waits and nothing moved for "
        "stall_after_seconds), paused (its connector paused on purpose), or unknown"
    )
    waiting: int = Field(description="records waiting for the stage (at most this many)")
    last_moved_at: datetime | None = Field(
        description="when the stage last got through something (or had nothing to do)"
    )
    message: str


class Pipeline(BaseModel):
    flink_job: str = Field(description="state of the pipeline's Flink job, or 'unreachable'")
    version: int | None = Field(description="the live pipeline script's version")
    connectors: dict[str, str] = Field(description="connector name: state")
    stages: list[StageProgress] = Field(description="each stage's progress, checked every few seconds")
    stalled: list[str] = Field(description="one line per stalled stage, naming it and what waits")
    stall_after_seconds: float
    healthy: bool = Field(description="the job and the connectors run, and no stage is stalled")


class Stats(BaseModel):
    posts_counted: int = Field(description="distinct posts counted (duplicates by id excluded)")
    newest_event: datetime | None = Field(description="event time of the newest post seen")
    last_update: datetime | None = Field(description="when the counts last changed in the database")
    freshness_seconds: float | None = Field(description="seconds since the last update")
    rejected: Rejected
    pipeline: Pipeline
    tracked_keywords: list[str]
    tracked_languages: list[str]


_cache: dict[str, tuple[float, object]] = {}
_refreshing: dict[str, threading.Lock] = {}


def _cached(key: str, ttl: float, compute):
    """Outside services are asked at most once per `ttl` seconds, by one thread at
    a time; meanwhile the others get the previous answer (stale while revalidating)."""
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < ttl:
        return hit[1]
    lock = _refreshing.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=hit is None):
        return hit[1]
    try:
        value = compute()
        _cache[key] = (time.monotonic(), value)
        return value
    finally:
        lock.release()


def _pipeline() -> Pipeline:
    job_state, version, connectors = "unreachable", None, {}
    try:
        job = pipeline.pick_live(httpx.get(f"{settings.flink_url}/jobs/overview", timeout=1).json()["jobs"])
        job_state = job["state"] if job else "not running"
        version = pipeline.job_version(job) if job else None
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    try:
        connectors = progress.connector_states(settings.connect_url, timeout=1)
    except (httpx.HTTPError, ValueError, KeyError):
        connectors = {"connect": "unreachable"}
    running = job_state == "RUNNING" and bool(connectors) and all(s == "RUNNING" for s in connectors.values())
    return Pipeline(
        flink_job=job_state,
        version=version,
        connectors=connectors,
        healthy=running,
        stages=[],
        stalled=[],
        stall_after_seconds=settings.stall_after_seconds,
    )


def with_progress(p: Pipeline) -> Pipeline:
    """The services' states (cached) and the monitor's latest verdicts."""
    verdicts = [dataclasses.replace(v).paused_if(p.connectors.get(v.connector or "")) for v in monitor.verdicts]
    stages = [
        StageProgress(
            stage=v.stage,
            state=v.state,
            waiting=v.waiting,
            message=v.message,
            last_moved_at=_ms(v.last_moved_at * 1000) if v.last_moved_at else None,
        )
        for v in verdicts
    ]
    stalled = [f"{v.stage} stalled: {v.message}" + _context(v.stage, p) for v in verdicts if v.state == "stalled"]
    return p.model_copy(update={"stages": stages, "stalled": stalled, "healthy": p.healthy and not stalled})


def _context(stage: str, p: Pipeline) -> str:
    if stage == "flink job":
        return f" (Flink job {p.flink_job})"
    bad = {k: v for k, v in p.connectors.items() if v != "RUNNING"}
    return " (" + ", ".join(f"connector {k} {v}" for k, v in bad.items()) + ")" if bad else " (connector tasks RUNNING)"


_consumer = None


def _dead_letters() -> int:
    """Records in the sink's dead-letter topic (one long-lived consumer, used under _cached's lock)."""
    global _consumer
    from confluent_kafka import Consumer, TopicPartition

    try:
        if _consumer is None:
            _consumer = Consumer(
                {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "api-stats", "socket.timeout.ms": 1000}
            )
        md = _consumer.list_topics(settings.dead_letter_topic, timeout=1).topics.get(settings.dead_letter_topic)
        if md is None or md.error is not None:
            return 0
        total = 0
        for p in md.partitions:
            low, high = _consumer.get_watermark_offsets(TopicPartition(settings.dead_letter_topic, p), timeout=1)
            total += high - low
        return total
    except Exception:
        return 0


def close() -> None:
    """At shutdown: the dead-letter consumer would go on reconnecting to a stopped broker."""
    global _consumer
    if _consumer is not None:
        _consumer.close()
        _consumer = None


def _producer_rejects() -> int:
    if not settings.rejects_dir.is_dir():
        return 0
    return sum(sum(1 for _ in f.open("rb")) for f in settings.rejects_dir.glob("*.jsonl"))


def _outside() -> tuple[int, int, Pipeline]:
    """What other services say (blocking calls, each cached): run in a worker thread."""
    return _cached("rejects", 5, _producer_rejects), _cached("dlq", 5, _dead_letters), pipeline_state()


def pipeline_state() -> Pipeline:
    """The job's and the connectors' states (asked at most every 2 s), with progress."""
    return with_progress(_cached("pipeline", 2, _pipeline))


def _ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


STATS_ROW = "SELECT posts, newest_event_ms, updated_at FROM post_stats WHERE stat = 'all'"
REJECTED_ROW = "SELECT posts FROM post_stats WHERE stat = 'rejected'"
SINK_REJECTED_ROW = "SELECT count(*) FROM sink_rejects"


@router.get("/stats", response_model=Stats)
async def stats(conn: Conn) -> Stats:
    """Posts counted, freshness, rejects and dead letters, pipeline health."""
    row = await (await conn.execute(STATS_ROW)).fetchone()
    posts, newest, updated = row if row else (0, None, None)
    set_aside = await (await conn.execute(REJECTED_ROW)).fetchone()
    (sink_rejects,) = await (await conn.execute(SINK_REJECTED_ROW)).fetchone()
    producer_rejects, dead_letters, pipeline = await run_in_threadpool(_outside)
    rejected = Rejected(
        producer=producer_rejects,
        pipeline=set_aside[0] if set_aside else 0,
        sink=sink_rejects,
        dead_letter=dead_letters,
    )
    return Stats(
        posts_counted=posts,
        newest_event=_ms(newest),
        last_update=updated,
        freshness_seconds=(datetime.now(UTC) - updated).total_seconds() if updated else None,
        rejected=rejected,
        pipeline=pipeline,
        tracked_keywords=settings.tracked_keywords,
        tracked_languages=settings.tracked_languages,
    )


class RejectedPost(BaseModel):
    tweets_partition: int = Field(description="where the record is in the topic tweets: partition ...")
    tweets_offset: int = Field(description="... and offset")
    reason: str
    post_id: str | None
    text_preview: str | None = Field(description="the first 280 characters of its text, if it had one")
    raw_bytes: int | None = Field(description="size of the copy kept of a record that could not be decoded")
    rejected_at: datetime


@router.get("/rejects", response_model=list[RejectedPost])
async def rejects(
    conn: Conn, limit: Annotated[int, Query(ge=1, le=1000, description="how many, 1 to 1000")] = 20
) -> list[RejectedPost]:
    """The records the pipeline set aside, newest first (the whole copy is in the
    table rejected_posts and the topic of the same name)."""
    rows = await (
        await conn.execute(
            "SELECT tweets_partition, tweets_offset, reason, post_id, text_preview, length(raw_value), rejected_at"
            " FROM rejected_posts ORDER BY rejected_at DESC, tweets_partition, tweets_offset DESC LIMIT %s",
            (limit,),
        )
    ).fetchall()
    return [
        RejectedPost(
            tweets_partition=r[0],
            tweets_offset=r[1],
            reason=r[2],
            post_id=r[3],
            text_preview=r[4],
            raw_bytes=r[5],
            rejected_at=r[6],
        )
        for r in rows
    ]


class SinkReject(BaseModel):
    table: str = Field(description="the serving table the row was for")
    reason: str
    key_preview: str = Field(description="the first 200 characters of its key")
    key_bytes: int
    rejected_at: datetime


@router.get("/rejects/sink", response_model=list[SinkReject])
async def sink_rejects(
    conn: Conn, limit: Annotated[int, Query(ge=1, le=1000, description="how many, 1 to 1000")] = 20
) -> list[SinkReject]:
    """Count rows the database would refuse, set aside instead of written (db/005_sink_guard.sql), newest first."""
    rows = await (
        await conn.execute(
            "SELECT table_name, reason, key_preview, key_bytes, rejected_at FROM sink_rejects ORDER BY id DESC LIMIT %s",
            (limit,),
        )
    ).fetchall()
    return [SinkReject(table=r[0], reason=r[1], key_preview=r[2], key_bytes=r[3], rejected_at=r[4]) for r in rows]


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        503: {"description": "too many live streams open (API_MAX_STREAMS)"},
    },
)
async def stream(request: Request):
    """Server-sent events: an `update` event whenever the counts change, carrying posts
    counted, newest event, last update and what the page shows by default (the top 20
    hashtags and words of all time, the top 10 trending, the last 60 minutes of the top 5
    hashtags), and a comment every 15 s to keep the connection open. One poller serves every stream (api/broadcast.py)."""
    broadcast = request.app.state.broadcast
    queue = broadcast.open()
    if queue is None:
        return JSONResponse(
            {"detail": f"too many live streams open ({broadcast.max_streams}); try again later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    async def events():
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            broadcast.close(queue)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
