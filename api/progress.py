"""The pipeline's progress, watched in the background: every few seconds, how far
the Flink job and the sink got (stack/progress.py). /api/stats, /healthz/pipeline
and the page report a stage that has work waiting and has not moved for
`settings.stall_after_seconds` as stalled."""

from __future__ import annotations

import threading

import httpx

from stack import progress
from stack.common import http

from .core.config import settings


class Monitor:
    def __init__(self) -> None:
        self.verdicts: list[progress.Verdict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="progress-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        watch = progress.Watch(settings.kafka_bootstrap, settings.stall_after_seconds, timeout=3)
        try:
            while not self._stop.is_set():
                self.verdicts = check(watch)
                self._stop.wait(settings.progress_check_seconds)
        finally:
            watch.close()


def check(watch: progress.Watch) -> list[progress.Verdict]:
    """The Flink job, and each sink connector with the topics Kafka Connect says it reads."""
    verdicts = [watch.check(progress.flink_stage(flink_url=settings.flink_url))]
    try:
        info = http.get(f"{settings.connect_url}/connectors", params={"expand": "info"}, timeout=3).json()
        sinks = [
            progress.sink_stage(name, c["info"]["config"]["topics"].split(","))
            for name, c in sorted(info.items())
            if c["info"]["config"].get("topics")
        ]
    except (httpx.HTTPError, KeyError, ValueError, AttributeError) as e:
        return verdicts + [
            progress.Verdict("sink", "unknown", 0, None, f"Kafka Connect does not answer ({type(e).__name__})")
        ]
    return verdicts + [watch.check(stage) for stage in sinks]


monitor = Monitor()
