"""Runs the API server: `python -m api` (the local stack's service and the image's
command), with the settings of api/core/config.py (API_* variables)."""

from __future__ import annotations

import uvicorn

from .core.config import REPO, settings


def main() -> None:
    uvicorn.run(
        "api.main:app",
        host=settings.host,
        port=settings.port,
        limit_concurrency=settings.limit_concurrency,
        access_log=False,
        app_dir=str(REPO),
    )


if __name__ == "__main__":
    main()
