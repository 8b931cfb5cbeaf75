"""Delivery failures are reported, never silent; metrics are visible (log line, Prometheus);
SIGTERM/SIGINT stop the producer cleanly with every sent post delivered."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import REPO

from .conftest import consume, delete_subject, producer_env, report, run_cli


def test_delivery_failures_are_reported(broker, registry, tmp_path):
    missing = f"producer_test_missing_{uuid.uuid4().hex[:8]}"  # never created: the broker does not auto-create
    try:
        out = run_cli(
            ["synthetic", "--count", "5"],
            producer_env(missing, tmp_path, PRODUCER_MESSAGE_TIMEOUT_MS="1500"),
            timeout=60,
        )
    finally:
        delete_subject(registry, f"{missing}-value")
    assert out.returncode == 1
    text = report(out)
    assert f"sent 0 posts to '{missing}'" in text
    assert "delivery failed" in text and "5 posts failed delivery" in text


class Running:
    """The producer CLI in the background, its stderr collected line by line."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", *args],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            assert self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} in {timeout}s:\n{''.join(self.lines)}")

    def stop(self, sig: int, timeout: float = 15) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code, " ".join("".join(self.lines).split())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_metrics_are_visible_and_a_signal_stops_cleanly(topic, registry, tmp_path, sig):
    env = producer_env(topic, tmp_path, PRODUCER_METRICS_PORT="0", PRODUCER_LOG_INTERVAL_S="0.3")
    running = Running(["synthetic", "--count", "0", "--rate", "300", "--start", "now"], env)
    try:
        port = int(running.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1))
        running.wait_for(
            rf"synthetic -> '{topic}': sent [1-9][\d,]*, delivered [1-9][\d,]* \(\d+/s\), rejected 0, "
            r"delivery errors 0"
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        code, text = running.stop(sig)
    labels = f'source="synthetic",topic="{topic}"'
    sent = float(re.search(rf"tweetstream_producer_posts_sent_total\{{{labels}\}} (\S+)", metrics).group(1))
    assert sent > 0
    assert re.search(rf"tweetstream_producer_delivery_errors_total\{{{labels}\}} 0\.0", metrics)
    assert re.search(rf"tweetstream_producer_rate\{{{labels}\}} \d", metrics)
    assert code == 0, text
    assert f"stopped by {signal.Signals(sig).name}" in text
    delivered = int(re.search(rf"sent (\d+) posts to '{topic}'", text).group(1))
    assert delivered >= sent
    assert len(consume(topic, registry, delivered)) == delivered  # everything reported sent is in the topic
