"""The HTTP API and the dashboard: JSON under /api, the page from web/."""

import gc
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .broadcast import Broadcast
from .core.config import settings
from .middleware import Metrics, ResponseCache, SecurityHeaders
from .progress import monitor
from .routes import counts, health, stats


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with AsyncConnectionPool(
        settings.conninfo(),
        min_size=2,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True},
        timeout=5,
        # a connection broken by a database restart is replaced, not handed out
        check=AsyncConnectionPool.check_connection,
    ) as pool:
        app.state.pool = pool
        # this run's own: a second run of the app in the process (a test's) replaces app.state's
        broadcast = app.state.broadcast = Broadcast(settings.max_streams)
        broadcast.start(pool, settings.stream_poll_seconds)
        monitor.start()
        # what start-up loaded lives as long as the process: full garbage collections skip it
        # (each one stalled every request for 10-20 ms)
        gc.freeze()
        yield
        monitor.stop()
        await broadcast.stop()
    stats.close()


app = FastAPI(
    title="tweetstream",
    version="0.2.0",
    lifespan=lifespan,
    description="Live hashtag and word counts of a social-media stream, counted by a Flink SQL pipeline.",
)
# the counts change at most once per checkpoint: answers are reused for cache_seconds
app.add_middleware(
    ResponseCache,
    seconds=settings.cache_seconds,
    paths={"/api/hashtags", "/api/unigrams", "/api/timeline", "/api/trending", "/api/stats"},
)
app.add_middleware(Metrics)
app.add_middleware(SecurityHeaders)


@app.exception_handler(PoolTimeout)
@app.exception_handler(psycopg.OperationalError)
async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is away (restarting, an outage): a 503 the client may retry, not a 500."""
    return JSONResponse(
        {"detail": "the database is unavailable; try again in a few seconds"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


app.include_router(counts.router)
app.include_router(stats.router)
app.include_router(health.router)

# Chart.js from npm (web/node_modules), so the page works with no internet.
app.mount(
    "/vendor/chart.js",
    StaticFiles(directory=settings.web_dir / "node_modules" / "chart.js" / "dist", check_dir=False),
    name="chartjs",
)
app.mount("/", StaticFiles(directory=settings.web_dir / "static", html=True), name="web")
