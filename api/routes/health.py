"""Liveness and metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import Conn

router = APIRouter(tags=["health"])

@router.get("/healthz")
async def healthz(conn: Conn) -> JSONResponse:
    """200 when the API can read the serving database."""
    await conn.execute("SELECT 1 FROM hashtag_counts LIMIT 1")
    return JSONResponse({"status": "ok"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus metrics of the API."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
