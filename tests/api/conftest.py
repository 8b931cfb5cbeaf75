"""The API on a real PostgreSQL: a database of its own per test session, made
from db/*.sql and filled with known rows, read through the read-only role."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO, secret

MIN = 60_000
NEWEST = 1_614_592_830_000  # 2021-03-01T10:00:30Z
NEWEST_MINUTE = NEWEST - NEWEST % MIN


def connect(db: str, user: str = "postgres", password_name: str = "postgres_password"):
    return psycopg.connect(
        host="127.0.0.1", port=5432, dbname=db, user=user, password=secret(password_name), autocommit=True
    )


FIXTURE_ROWS = {
    "hashtag_counts": [("covid", 10), ("vaccin", 10), ("a", 3), ("b", 3), ("é", 3), ("z", 1)],
    "unigram_counts": [("vaccin", 7), ("dose", 2)],
    # (minute_ms, hashtag, count): the newest minute, 4 minutes before, 10 minutes before, 2 days before
    "hashtag_minute_counts": [
        (NEWEST_MINUTE, "covid", 2),
        (NEWEST_MINUTE - 4 * MIN, "covid", 3),
        (NEWEST_MINUTE - 4 * MIN, "vaccin", 1),
        (NEWEST_MINUTE - 10 * MIN, "vaccin", 6),
        (NEWEST_MINUTE - 2 * 1440 * MIN, "a", 3),
    ],
    "unigram_minute_counts": [(NEWEST_MINUTE, "dose", 2), (NEWEST_MINUTE - 30 * MIN, "vaccin", 7)],
    # (trending_hashtags is a view over hashtag_minute_counts: db/004_trending.sql)
    "post_stats": [("all", 42, NEWEST), ("rejected", 2, None)],
    "rejected_posts": [
        (0, 7, "IOException: Unknown data format. Magic number does not match", None, None, b"\x01junk"),
        (1, 3, "text longer than 25000 characters (1048576)", "big-1", "aaaa", None),
    ],
}
COLUMNS = {
    "post_stats": "(stat, posts, newest_event_ms)",
    "rejected_posts": "(tweets_partition, tweets_offset, reason, post_id, text_preview, raw_value)",
}


@pytest.fixture(scope="session")
def api_db(stack):
    name = f"apitest_{uuid.uuid4().hex[:8]}"
    with connect("postgres") as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER pipeline")
    try:
        with connect(name, "pipeline", "pipeline_db_password") as conn:
            for script in sorted((REPO / "db").glob("*.sql")):
                conn.execute(script.read_text())
            for table, rows in FIXTURE_ROWS.items():
                marks = ", ".join(["%s"] * len(rows[0]))
                columns = COLUMNS.get(table, "")
                for row in rows:
                    conn.execute(f"INSERT INTO {table} {columns} VALUES ({marks})", row)
        yield name
    finally:
        with connect("postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def client(api_db):
    from api.core.config import settings
    from api.main import app

    settings.db_name = api_db
    with TestClient(app) as c:
        yield c
