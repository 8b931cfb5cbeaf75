"""Shared dependencies: a connection from the app's async pool.

Async on purpose: a client that goes away cancels the request, and only an
async context manager is sure to give the connection back then (a sync one
entered in a worker thread can leak it)."""

from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
