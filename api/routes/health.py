from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import Conn

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(conn: Conn) -> JSONResponse:
    """200 when the API can read the serving database."""
    conn.execute("SELECT 1 FROM hashtag_counts LIMIT 1")
    return JSONResponse({"status": "ok"})
