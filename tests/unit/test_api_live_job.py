"""/api/stats calls the same Flink job live as the supervisor does (stack.pipeline.live_job)."""

from __future__ import annotations

import pytest

from api.routes import stats
from stack import pipeline

# every state of Flink's JobStatus
STATES = (
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
)
NAMES = ("tweetstream-pipeline-v4", "tweetstream-pipeline-v", "tweetstream-pipeline-vx", "t_tweetstream-pipeline-v4")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", NAMES)
def test_the_same_job_is_live_as_for_the_supervisor(monkeypatch, state, name):
    jobs = [
        {"jid": "old", "name": "tweetstream-pipeline-v3", "state": "CANCELED"},
        {"jid": "this", "name": name, "state": state},
    ]
    monkeypatch.setattr(pipeline, "jobs", lambda: jobs)
    assert stats.live_job(jobs) == pipeline.live_job()


def test_a_suspended_or_reconciling_job_is_not_live():
    for state in ("SUSPENDED", "RECONCILING"):
        assert stats.live_job([{"jid": "j", "name": "tweetstream-pipeline-v4", "state": state}]) is None
    job = {"jid": "j", "name": "tweetstream-pipeline-v4", "state": "RESTARTING"}
    assert stats.live_job([job]) == job
