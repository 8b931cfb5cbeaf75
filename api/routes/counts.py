"""Top hashtags and words (all time or over a recent window), timelines, trending."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..deps import Conn

router = APIRouter(prefix="/api", tags=["counts"])

MINUTE_MS = 60_000
Limit = Annotated[int, Query(ge=1, le=1000, description="how many rows, 1 to 1000")]


class Window(StrEnum):
    all = "all"
    m5 = "5m"
    m15 = "15m"
    h1 = "1h"
    h24 = "24h"

    @property
    def minutes(self) -> int | None:
        return {"all": None, "5m": 5, "15m": 15, "1h": 60, "24h": 1440}[self.value]


WindowQuery = Annotated[
    Window,
    Query(
        description=(
            "all: since the first post. Otherwise the last N one-minute buckets of event time, "
            "ending with the minute of the newest post seen (not the wall clock), so replays of old posts have windows too."
        )
    ),
]


class HashtagCount(BaseModel):
    hashtag: str
    count: int


class WordCount(BaseModel):
    word: str
    count: int


async def _top(conn: Conn, table: str, key: str, window: Window, limit: int) -> list[tuple[str, int]]:
    # table and key come from the two fixed call sites below, never from a request
    if window.minutes is None:
        sql = f'SELECT {key}, count FROM {table}_counts ORDER BY count DESC, {key} COLLATE "C" LIMIT %s'
        return await (await conn.execute(sql, (limit,))).fetchall()
    sql = f"""
        SELECT {key}, sum(count)::bigint AS total
        FROM {table}_minute_counts
        WHERE minute_ms >= (SELECT newest_event_ms - newest_event_ms %% {MINUTE_MS} FROM post_stats WHERE stat = 'all') - %s
        GROUP BY {key}
        ORDER BY total DESC, {key} COLLATE "C"
        LIMIT %s"""
    return await (await conn.execute(sql, ((window.minutes - 1) * MINUTE_MS, limit))).fetchall()


@router.get("/hashtags", response_model=list[HashtagCount])
async def top_hashtags(conn: Conn, limit: Limit = 20, window: WindowQuery = Window.all) -> list[HashtagCount]:
    """Hashtags by count, most used first; ties by hashtag (code-point order)."""
    return [HashtagCount(hashtag=h, count=c) for h, c in await _top(conn, "hashtag", "hashtag", window, limit)]


@router.get("/unigrams", response_model=list[WordCount])
async def top_unigrams(conn: Conn, limit: Limit = 20, window: WindowQuery = Window.all) -> list[WordCount]:
    """Words (stopwords removed) by count, most used first; ties by word (code-point order)."""
    return [WordCount(word=w, count=c) for w, c in await _top(conn, "unigram", "word", window, limit)]


class Series(BaseModel):
    hashtag: str
    counts: list[int] = Field(description="one count per minute, oldest first")


class Timeline(BaseModel):
    start_ms: int | None = Field(description="the first minute's start, epoch ms UTC; null before any post")
    minutes: int
    series: list[Series]


@router.get("/timeline", response_model=Timeline)
async def timeline(
    conn: Conn,
    hashtag: Annotated[
        list[str],
        Query(max_length=10, description="hashtags to show (lower case, no '#'); default: the top 5 of the period"),
    ] = None,
    minutes: Annotated[int, Query(ge=1, le=1440, description="how many minutes, ending with the newest post's")] = 60,
) -> Timeline:
    """Per-minute counts of chosen hashtags over the last `minutes` minutes of event time."""
    if hashtag is None:
        hashtag = []
    row = await (
        await conn.execute(
            "SELECT newest_event_ms - newest_event_ms %% %s FROM post_stats WHERE stat = 'all'", (MINUTE_MS,)
        )
    ).fetchone()
    if row is None or row[0] is None:
        return Timeline(start_ms=None, minutes=minutes, series=[])
    start = row[0] - (minutes - 1) * MINUTE_MS
    # as the pipeline keys them: lower case, no '#'; NUL never occurs in a hashtag (and PostgreSQL refuses it)
    tags = [t.lstrip("#").lower().replace("\x00", "") for t in hashtag]
    if not tags:
        tags = [
            t
            for (t,) in await (
                await conn.execute(
                    """SELECT hashtag FROM hashtag_minute_counts WHERE minute_ms >= %s
               GROUP BY hashtag ORDER BY sum(count) DESC, hashtag COLLATE "C" LIMIT 5""",
                    (start,),
                )
            ).fetchall()
        ]
    series = {t: [0] * minutes for t in tags}
    for minute_ms, tag, count in await (
        await conn.execute(
            "SELECT minute_ms, hashtag, count FROM hashtag_minute_counts WHERE hashtag = ANY(%s) AND minute_ms >= %s",
            (tags, start),
        )
    ).fetchall():
        i = (minute_ms - start) // MINUTE_MS
        if 0 <= i < minutes:
            series[tag][i] = count
    return Timeline(start_ms=start, minutes=minutes, series=[Series(hashtag=t, counts=c) for t, c in series.items()])


class Trend(BaseModel):
    rank: int
    hashtag: str
    recent: int = Field(description="uses in the window's last 15 minutes")
    previous: int = Field(description="uses in the 60 minutes before those")
    score: float = Field(
        description="(recent + 1) / (previous / 4 + 1): growth over the previous hour's 15-minute average"
    )
    window_end_ms: int = Field(description="the window's end: the end of the newest post's minute, epoch ms UTC")


@router.get("/trending", response_model=list[Trend])
async def trending(conn: Conn, limit: Annotated[int, Query(ge=1, le=20)] = 10) -> list[Trend]:
    """The trending hashtags of the 75 minutes ending with the newest post's minute (event time;
    the view db/004_trending.sql computes them from the per-minute counts)."""
    rows = await (
        await conn.execute(
            """SELECT rank, hashtag, recent, previous, score, window_end_ms FROM trending_hashtags
           ORDER BY rank LIMIT %s""",
            (limit,),
        )
    ).fetchall()
    return [Trend(rank=r, hashtag=h, recent=rc, previous=p, score=s, window_end_ms=w) for r, h, rc, p, s, w in rows]
