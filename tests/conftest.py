"""Shared fixtures. `stack`: the real local stack, started by the test session
when it is not already up, and stopped again at the end if the session started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]
STACKCTL = [sys.executable, "-m", "stack.stackctl"]


def _stack_healthy() -> bool:
    return subprocess.run([*STACKCTL, "status"], cwd=REPO, capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def stack():
    started_here = False
    if os.environ.get("STACK_KEEP") == "1":  # someone else runs the stack: never start or stop it
        if not _stack_healthy():
            pytest.fail("STACK_KEEP=1 but the stack is not healthy", pytrace=False)
        yield
        return
    if not _stack_healthy():
        up = subprocess.run([*STACKCTL, "up"], cwd=REPO, capture_output=True, text=True)
        if up.returncode != 0:
            pytest.fail(f"`stackctl up` failed:\n{up.stdout}\n{up.stderr}", pytrace=False)
        started_here = True
    yield
    if started_here:
        subprocess.run([*STACKCTL, "down"], cwd=REPO, capture_output=True)


def wait_checkpoints(job_id: str, more: int = 2, timeout: float = 120) -> None:
    """Until the Flink job has completed `more` checkpoints after now: every count it
    had computed is then in its sinks, and a count that was to change twice (a post
    counted again after a restart) would have changed by then."""
    from stack.pipeline import completed_checkpoints

    target = completed_checkpoints(job_id) + more
    deadline = time.monotonic() + timeout
    while completed_checkpoints(job_id) < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"Flink job {job_id} completed no {more} checkpoints within {timeout:.0f} s")
        time.sleep(0.5)


def source_lag(topic: str = "tweets", group: str = "tweetstream-flink") -> int:
    """Posts in `topic` the Flink job has not yet checkpointed past (it commits its
    offsets to Kafka when a checkpoint completes, i.e. when its output is committed)."""
    from stack.common import KAFKA
    from stack.progress import consumer_lag

    return consumer_lag(KAFKA, group, [topic])


def wait_caught_up(timeout: float = 600, interval: float = 1.0) -> float:
    """Until Flink has consumed every post and the sink has written every count
    update (consumer-group offsets at the topics' ends), twice in a row; returns the
    seconds it took."""
    from stack.sink import sink_lag

    t0 = time.monotonic()
    calm = 0
    while time.monotonic() - t0 < timeout:
        try:
            calm = calm + 1 if source_lag() == 0 and sink_lag() == 0 else 0
        except Exception:  # a service is still coming back
            calm = 0
        if calm >= 2:
            return time.monotonic() - t0
        time.sleep(interval)
    raise AssertionError(
        f"the pipeline did not catch up within {timeout:.0f}s (source lag {source_lag()}, sink lag {sink_lag()})"
    )


def secret(name: str) -> str:
    from stack.common import settings

    return (settings.secrets / name).read_text().strip()


def reader_connect(**kwargs) -> psycopg.Connection:
    """A connection to the serving database as the API's read-only role."""
    from stack.common import serving_db

    return serving_db("api_reader", **kwargs)


@pytest.fixture
def reader_db(stack):
    """The serving database as the API's read-only role."""
    with reader_connect() as conn:
        yield conn


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(stack):
    """A page of headless Chromium (Debian's, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        yield page
        browser.close()
