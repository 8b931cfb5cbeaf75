"""Shared dependencies: a psycopg connection from the app's pool."""

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]
