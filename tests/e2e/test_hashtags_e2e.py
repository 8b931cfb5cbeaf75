"""A replay file with known hashtags goes through the whole real stack
(producer -> Kafka -> Flink SQL -> Connect -> PostgreSQL -> API) and the API
shows exactly the expected counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from stack import pipeline
from tests.conftest import REPO, wait_caught_up, wait_checkpoints

FIXTURES = REPO / "tests" / "fixtures"
API = "http://127.0.0.1:8000"
CATCH_UP_S = 120


def all_hashtag_counts(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT hashtag, count FROM hashtag_counts").fetchall())


def with_fresh_ids(src: Path, dst: Path, run: str) -> None:
    """The fixture with ids unique to this run (duplicates stay duplicates), so a
    stack that already counted it once counts it again."""
    out = []
    for line in src.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)
            continue
        if isinstance(obj, dict) and "id" in obj:
            obj["id"] = f"{run}-{obj['id']}"
        out.append(json.dumps(obj, ensure_ascii=False))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_replayed_hashtags_reach_the_api_exactly(reader_db, tmp_path):
    expected = json.loads((FIXTURES / "e2e_hashtags.expected.json").read_text())
    before = all_hashtag_counts(reader_db)
    replay = tmp_path / "e2e_hashtags.jsonl"
    with_fresh_ids(FIXTURES / "e2e_hashtags.jsonl", replay, uuid.uuid4().hex[:12])

    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "replay", str(replay)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = " ".join(out.stderr.split())
    assert f"sent {expected['posts_sent']} posts to 'tweets'" in report
    assert f"rejected {expected['lines_rejected']} lines" in report
    # rejected lines are kept, each with its line number and reason
    rejects_file = Path(re.search(r"rejected lines kept in (\S+)", report).group(1))
    rejects = [json.loads(line) for line in rejects_file.read_text().splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        (4, "invalid JSON"),
        (7, "missing field"),
        (9, "missing field"),
        (10, "not a JSON object"),
    ]

    want = {tag: before.get(tag, 0) + n for tag, n in expected["hashtags"].items()}
    deadline = time.monotonic() + CATCH_UP_S
    while time.monotonic() < deadline:
        now = all_hashtag_counts(reader_db)
        if all(now.get(tag) == n for tag, n in want.items()):
            break
        time.sleep(1)
    # two more checkpoints, and the sink through all they wrote: anything counted twice
    # or wrongly would show up now
    wait_checkpoints(pipeline.live_job()["jid"])
    wait_caught_up()
    after = all_hashtag_counts(reader_db)
    changed = {tag: after[tag] - before.get(tag, 0) for tag in after if after[tag] != before.get(tag, 0)}
    assert changed == expected["hashtags"]

    # the API serves the same counts, sorted by count desc then hashtag asc; the replay's
    # tags are among the top 1,000 only on a stack that holds few others, so the whole
    # answer is held to the table (whose counts for them were checked above)
    api = httpx.get(f"{API}/api/hashtags", params={"limit": 1000}).json()
    table = sorted(after.items(), key=lambda kv: (-kv[1], kv[0]))[:1000]
    assert [(row["hashtag"], row["count"]) for row in api] == table
    served = {row["hashtag"]: row["count"] for row in api}
    for tag, n in want.items():
        assert served.get(tag, n) == n, tag


@pytest.mark.parametrize(
    "limit, message",
    [
        ("0", "Input should be greater than or equal to 1"),
        ("1001", "Input should be less than or equal to 1000"),
        ("abc", "Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_limit_out_of_range_is_a_readable_422(stack, limit, message):
    r = httpx.get(f"{API}/api/hashtags", params={"limit": limit})
    assert r.status_code == 422
    assert [d["msg"] for d in r.json()["detail"]] == [message]


def test_limit_caps_the_rows(stack):
    assert len(httpx.get(f"{API}/api/hashtags", params={"limit": 2}).json()) == 2


# the tables the API's role reads: what the pipeline serves, what the database derives
# from it, and the database's own retention setting (db/002_retention.sql)
SERVING_TABLES = [*pipeline.SERVING_TABLES, *pipeline.DERIVED_TABLES, "retention"]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO {table} SELECT * FROM {table} LIMIT 1",
        "UPDATE {table} SET {column} = {column}",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
        "DROP TABLE {table}",
        "ALTER TABLE {table} ADD COLUMN injected int",
        "CREATE INDEX ON {table} ({column})",
        "CREATE TABLE injected (x int)",
        "CREATE TABLE injected AS SELECT * FROM {table}",
        "CREATE SCHEMA injected",
        "CREATE FUNCTION injected() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_api_role_cannot_write(reader_db, statement):
    """The API's role can change nothing: each statement on each serving table is refused
    (inside a transaction that is rolled back anyway, so a failure leaves no trace)."""
    tables = [t for (t,) in reader_db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    assert set(SERVING_TABLES) <= set(tables)
    for table in tables:
        column = reader_db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position LIMIT 1",
            (table,),
        ).fetchone()[0]
        sql = statement.format(table=table, column=column)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|must be owner"):
            with reader_db.transaction(force_rollback=True):
                reader_db.execute(sql)
        assert reader_db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE, sql


def test_dashboard_and_chartjs_are_served_locally(stack):
    page = httpx.get(f"{API}/")
    assert page.status_code == 200 and "/vendor/chart.js/chart.umd.min.js" in page.text
    js = httpx.get(f"{API}/vendor/chart.js/chart.umd.min.js")
    assert js.status_code == 200 and "Chart" in js.text[:2000]


def test_up_on_a_running_stack_changes_nothing(stack):
    pids = {p.name: p.read_text() for p in (REPO / ".stack" / "run").glob("*.pid")}
    job = pipeline.live_job()["jid"]
    out = subprocess.run([sys.executable, "-m", "stack.stackctl", "up"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert {p.name: p.read_text() for p in (REPO / ".stack" / "run").glob("*.pid")} == pids
    # the same Flink job goes on: none was started (pipeline.start says "flink: starting ...")
    assert pipeline.live_job()["jid"] == job
    assert "flink: starting" not in out.stderr


def test_connectors_target_redeploys_idempotently(stack):
    out = subprocess.run(["make", "-s", "connectors"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "connectors running" in out.stderr
    from stack.sink import connector_status

    status = connector_status("serving-tables-sink")
    assert status["connector"]["state"] == "RUNNING" and [t["state"] for t in status["tasks"]] == ["RUNNING"]


def test_every_service_listens_on_loopback_only(stack):
    """No port of any stack process (and its children) is open beyond 127.0.0.1."""
    from stack.processes import process_tree, running_pid
    from stack.services import SERVICES

    ours = {p for name in SERVICES if (pid := running_pid(name)) for p in process_tree(pid)}
    listening = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    exposed = []
    for line in listening.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        local = line.split()[3]
        if pids & ours and not local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")):
            exposed.append(line)
    assert len(ours) >= len(SERVICES)
    assert exposed == []
