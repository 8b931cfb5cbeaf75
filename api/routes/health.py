"""Liveness and metrics."""

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import Conn
from .stats import pipeline_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(conn: Conn) -> JSONResponse:
    """200 when the API can read the serving database."""
    await conn.execute("SELECT 1 FROM hashtag_counts LIMIT 1")
    return JSONResponse({"status": "ok"})


@router.get(
    "/healthz/pipeline",
    responses={503: {"description": "a stage is stalled, or the job or a connector is not running"}},
)
async def pipeline_health() -> JSONResponse:
    """Progress is health: 200 when the Flink job and the connectors run and no stage
    is stalled (work waiting, nothing moved for stall_after_seconds); else 503,
    naming what stopped."""
    pipeline = await run_in_threadpool(pipeline_state)
    body = {
        "status": "ok" if pipeline.healthy else ("stalled" if pipeline.stalled else "not running"),
        "stalled": pipeline.stalled,
        "flink_job": pipeline.flink_job,
        "connectors": pipeline.connectors,
        "stages": [s.model_dump(mode="json") for s in pipeline.stages],
    }
    return JSONResponse(body, status_code=200 if pipeline.healthy else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus metrics of the API."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
