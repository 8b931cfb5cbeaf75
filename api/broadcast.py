"""One poller for every open live stream (/api/stream).

Every `stream_poll_seconds` it reads the counts' version (posts counted, newest
event, last update: one query). When that changed, it reads what a page shows
by default (the top hashtags and words of all time, trending, the timeline of
the top 5 hashtags: a few queries)
and hands the same event to every open stream. So open pages cost the database
nothing per page: they refetch only what the event does not carry."""

from __future__ import annotations

import asyncio
import json
import logging

from psycopg_pool import AsyncConnectionPool

from .routes.counts import Window, timeline, top_hashtags, top_unigrams, trending
from .routes.stats import STATS_ROW

log = logging.getLogger("api.broadcast")


class Broadcast:
    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self.streams: set[asyncio.Queue[str]] = set()
        self.latest: str | None = None  # the newest event, sent first to a stream that opens
        self._task: asyncio.Task | None = None

    def start(self, pool: AsyncConnectionPool, poll_seconds: float) -> None:
        self._task = asyncio.create_task(self._run(pool, poll_seconds))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def open(self) -> asyncio.Queue[str] | None:
        """A stream's queue of events, or None when `max_streams` are open."""
        if len(self.streams) >= self.max_streams:
            return None
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        if self.latest:
            queue.put_nowait(self.latest)
        self.streams.add(queue)
        return queue

    def close(self, queue: asyncio.Queue[str]) -> None:
        self.streams.discard(queue)

    async def _run(self, pool: AsyncConnectionPool, poll_seconds: float) -> None:
        last = None
        while True:
            try:
                async with pool.connection() as conn:
                    row = await (await conn.execute(STATS_ROW)).fetchone()
                    if row and row != last:
                        self._send(await self._event(conn, row))
                        last = row
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database is away: the streams stay open, polling goes on
                log.warning("live stream poll failed: %s", e)
            await asyncio.sleep(poll_seconds)

    @staticmethod
    async def _event(conn, row) -> str:
        posts, newest_ms, updated = row
        data = {
            "posts_counted": posts,
            "newest_event_ms": newest_ms,
            "last_update": updated.isoformat(),
            # what the page shows before anyone picks another period
            "hashtags": [h.model_dump() for h in await top_hashtags(conn, 20, Window.all)],
            "unigrams": [w.model_dump() for w in await top_unigrams(conn, 20, Window.all)],
            "trending": [t.model_dump() for t in await trending(conn, 10)],
            "timeline": (await timeline(conn, [], 60)).model_dump(),
        }
        return f"event: update\ndata: {json.dumps(data)}\n\n"

    def _send(self, event: str) -> None:
        self.latest = event
        for queue in self.streams:
            if queue.full():  # a page that has not read the last one gets the newest, not a backlog
                queue.get_nowait()
            queue.put_nowait(event)
