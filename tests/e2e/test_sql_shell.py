"""ksqlDB's everyday workflow, on Flink: `make sql FILE=script.sql` runs a script
on the running stack with the pipeline's tables already declared and exits with
its status, and the SQL gateway answers a statement over plain REST (what the
README's curl lines do)."""

from __future__ import annotations

import re
import subprocess
import time

import httpx

from stack import pipeline
from stack.common import GATEWAY
from tests.conftest import REPO


def make_sql(script: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "script.sql"
    path.write_text(script, encoding="utf-8")
    return subprocess.run(["make", "-s", "sql", f"FILE={path}"], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a_script_sees_the_pipelines_tables(stack, tmp_path):
    out = make_sql("SHOW TABLES;\nDESCRIBE hashtag_counts;\n", tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    listed = set(re.findall(r"^\|\s*(\w+)\s*\|$", out.stdout, re.MULTILINE))
    assert {*pipeline.SERVING_TABLES, "tweets"} <= listed, sorted(listed)
    assert re.search(r"\|\s*hashtag\s*\|\s*STRING\s*\|\s*FALSE\s*\|\s*PRI\(hashtag\)", out.stdout), out.stdout[-3000:]
    # the shell is not the pipeline: no second job under the pipeline's name
    assert sum(j["name"].startswith(pipeline.JOB_PREFIX) and j["state"] == "RUNNING" for j in pipeline.jobs()) == 1


def test_a_failing_script_fails_with_the_reason(stack, tmp_path):
    out = make_sql("SHOW TABLES;\nSELECT * FROM no_such_table;\n", tmp_path)
    assert out.returncode != 0
    assert "Object 'no_such_table' not found" in out.stdout + out.stderr


def test_make_sql_names_a_missing_file(tmp_path):
    out = subprocess.run(
        ["make", "-s", "sql", f"FILE={tmp_path / 'missing.sql'}"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode != 0 and f"no such file: {tmp_path / 'missing.sql'}" in out.stderr


def test_a_statement_over_the_gateways_rest_api(stack):
    with httpx.Client(base_url=GATEWAY, timeout=30) as gw:
        session = gw.post("/sessions", json={}).json()["sessionHandle"]
        try:
            operation = gw.post(f"/sessions/{session}/statements", json={"statement": "SELECT 1 + 1"}).json()[
                "operationHandle"
            ]
            # pages of rows, each naming the next, until EOS (NOT_READY: not computed yet)
            rows, page = [], f"/sessions/{session}/operations/{operation}/result/0?rowFormat=JSON"
            deadline = time.monotonic() + 60
            while page:
                assert time.monotonic() < deadline, f"no end of the result within 60 s: {rows}"
                result = gw.get(page).json()
                rows += [row["fields"] for row in result.get("results", {}).get("data", [])]
                page = None if result["resultType"] == "EOS" else result["nextResultUri"].removeprefix("/v1")
                if result["resultType"] == "NOT_READY":
                    time.sleep(0.2)
            assert rows == [[2]]
        finally:
            assert gw.delete(f"/sessions/{session}").status_code == 200
