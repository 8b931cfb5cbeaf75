"""The SQL gateway the stack runs: the REST round trip the README shows, and the
error a broken statement gets when the pipeline submits it."""

from __future__ import annotations

import time

import httpx
import pytest

from stack import pipeline
from stack.common import GATEWAY


def test_a_statement_over_rest(stack):
    session = httpx.post(f"{GATEWAY}/sessions", json={}, timeout=30).json()["sessionHandle"]
    try:
        op = httpx.post(
            f"{GATEWAY}/sessions/{session}/statements", json={"statement": "SELECT 1 + 1 AS two"}, timeout=30
        ).json()["operationHandle"]
        deadline = time.monotonic() + 60
        rows = []
        url = f"{GATEWAY}/sessions/{session}/operations/{op}/result/0"
        while url and time.monotonic() < deadline:
            r = httpx.get(url, params={"rowFormat": "JSON"}, timeout=30).json()
            rows += [row["fields"] for row in r.get("results", {}).get("data", [])]
            if r["resultType"] == "EOS":
                break
            nxt = r.get("nextResultUri")
            url = f"{GATEWAY.rsplit('/v1', 1)[0]}{nxt}" if nxt and r["resultType"] == "PAYLOAD" else url
            time.sleep(0.2)
        assert rows == [[2]]
    finally:
        httpx.delete(f"{GATEWAY}/sessions/{session}", timeout=30)


def test_a_broken_script_gets_the_planner_s_error(stack):
    with pytest.raises(pipeline.SubmitError) as e:
        pipeline.submit("SET 'pipeline.name' = 'broken';\nINSERT INTO no_such_table SELECT 1;\n", "broken-v0")
    assert "in: INSERT INTO no_such_table SELECT 1" in str(e.value)
    assert "ValidationException: Cannot find table '`default_catalog`.`default_database`.`no_such_table`'" in str(
        e.value
    )
