"""Which state `make up` and the supervisor restore a new job from, when no job runs."""

from __future__ import annotations

import json

import pytest

from stack import pipeline


@pytest.fixture
def flink(tmp_path, monkeypatch):
    """No live job; `start` records what it was asked to restore from."""
    monkeypatch.setattr(pipeline, "RUN", tmp_path / "run")
    monkeypatch.setattr(pipeline, "CHECKPOINTS", tmp_path / "checkpoints")
    (tmp_path / "run").mkdir()
    monkeypatch.setattr(pipeline, "live_job", lambda prefix: None)
    monkeypatch.setattr(pipeline, "latest", lambda: "v4-script")
    started = []
    monkeypatch.setattr(pipeline, "start", lambda script, restore, target, hook: started.append(restore))
    return tmp_path, started


def checkpoint(root, job_id, n):
    d = root / "checkpoints" / job_id / f"chk-{n}"
    d.mkdir(parents=True)
    (d / "_metadata").write_text("x")
    return str(d)


def record(root, **fields):
    (root / "run" / "pipeline.json").write_text(json.dumps({"job_id": "job-b", **fields}))


def test_the_savepoint_that_down_left_comes_first(flink):
    root, started = flink
    record(root, restored_from="/somewhere/chk-3")
    checkpoint(root, "job-b", 7)
    (root / "run" / "savepoint.json").write_text(json.dumps({"location": "/savepoints/sp-1"}))
    pipeline._ensure_running(pipeline.Target(), None)
    assert started == ["/savepoints/sp-1"]
    assert not (root / "run" / "savepoint.json").exists()


def test_else_the_newest_completed_checkpoint_of_the_last_job(flink):
    root, started = flink
    record(root, restored_from="/somewhere/chk-3")
    checkpoint(root, "job-b", 7)
    newest = checkpoint(root, "job-b", 12)
    (root / "checkpoints" / "job-b" / "chk-13").mkdir()  # begun, never completed
    pipeline._ensure_running(pipeline.Target(), None)
    assert started == [newest]


def test_a_job_that_died_before_its_first_checkpoint_falls_back_to_what_it_restored(flink):
    root, started = flink
    old = checkpoint(root, "job-a", 69)
    record(root, restored_from=old)
    pipeline._ensure_running(pipeline.Target(), None)
    assert started == [old]


def test_nothing_to_restore_recounts_from_the_first_post(flink):
    root, started = flink
    record(root, restored_from=None)
    pipeline._ensure_running(pipeline.Target(), None)
    assert started == [None]
