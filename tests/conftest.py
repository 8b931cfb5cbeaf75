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


def wait_sink_idle(timeout: float = 120) -> None:
    """Until the sink connectors have written every count update in Kafka (their
    consumer groups' offsets, committed each second, at the topics' ends)."""
    from stack import stackctl

    deadline = time.monotonic() + timeout
    while (lag := stackctl.sink_lag()) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"the sink still had {lag} count updates to write after {timeout:.0f} s")
        time.sleep(0.5)


def secret(name: str) -> str:
    return (REPO / ".stack" / "secrets" / name).read_text().strip()


def reader_connect(**kwargs) -> psycopg.Connection:
    """A connection to the serving database as the API's read-only role."""
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname="tweetstream",
        user="api_reader",
        password=secret("api_db_password"),
        autocommit=True,
        **kwargs,
    )


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
