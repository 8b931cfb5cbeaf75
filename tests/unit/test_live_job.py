"""Which Flink job is the pipeline's (stack.pipeline.pick_live): the one rule the
supervisor, /api/stats, the progress checks and the bench follow."""

from __future__ import annotations

import pytest

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
def test_the_live_job_is_an_active_one_named_after_the_pipeline(monkeypatch, state, name):
    jobs = [
        {"jid": "old", "name": "tweetstream-pipeline-v3", "state": "CANCELED"},
        {"jid": "this", "name": name, "state": state},
    ]
    monkeypatch.setattr(pipeline, "jobs", lambda: jobs)
    live = pipeline.live_job()
    assert live == pipeline.pick_live(jobs)
    assert (live is not None) == (state in pipeline.ACTIVE and name == "tweetstream-pipeline-v4")


def test_a_suspended_or_reconciling_job_is_not_live():
    for state in ("SUSPENDED", "RECONCILING"):
        assert pipeline.pick_live([{"jid": "j", "name": "tweetstream-pipeline-v4", "state": state}]) is None
    job = {"jid": "j", "name": "tweetstream-pipeline-v4", "state": "RESTARTING"}
    assert pipeline.pick_live([job]) == job


def test_the_newest_of_two_active_jobs_is_live():
    old = {"jid": "old", "name": "tweetstream-pipeline-v3", "state": "CANCELLING", "start-time": 1}
    new = {"jid": "new", "name": "tweetstream-pipeline-v4", "state": "RUNNING", "start-time": 2}
    assert pipeline.pick_live([new, old]) == new and pipeline.pick_live([old, new]) == new
