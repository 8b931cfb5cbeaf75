"""Liveness and metrics."""

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from ..deps import Conn

router = APIRouter(tags=["health"])

REQUESTS = Counter("api_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram("api_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))


async def record_metrics(request: Request, call_next):
    """Middleware: count and time every request by route template (not by raw path)."""
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    if name != "/api/stream":
        LATENCY.labels(name).observe(time.perf_counter() - start)
    REQUESTS.labels(name, str(response.status_code)).inc()
    return response


@router.get("/healthz")
def healthz(conn: Conn) -> JSONResponse:
    """200 when the API can read the serving database."""
    conn.execute("SELECT 1 FROM hashtag_counts LIMIT 1")
    return JSONResponse({"status": "ok"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus metrics of the API."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
