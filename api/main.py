"""The HTTP API and the dashboard: JSON under /api, the static page from web/."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from .core.config import settings
from .routes import counts, health


@asynccontextmanager
async def lifespan(app: FastAPI):
    with ConnectionPool(settings.conninfo(), min_size=1, max_size=settings.pool_max_size,
                        kwargs={"autocommit": True}, open=True) as pool:
        app.state.pool = pool
        yield


app = FastAPI(title="tweetstream", version="0.1.0", lifespan=lifespan,
              description="Live hashtag and word counts of a social-media stream.")
app.include_router(counts.router)
app.include_router(health.router)

# Chart.js from npm (web/node_modules), so the page works with no internet.
chartjs = settings.web_dir / "node_modules" / "chart.js" / "dist"
if chartjs.is_dir():
    app.mount("/vendor/chart.js", StaticFiles(directory=chartjs), name="chartjs")
app.mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web")
