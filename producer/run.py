"""The one loop every source goes through: posts to the writer, rejects to the rejects
file, metrics, progress, and a clean stop on SIGINT/SIGTERM (deliveries are flushed).

A source is an iterable of `Post` (to send), `Reject` (bad input) and `None`
(nothing yet: a live source yields it a few times a second, so the loop can
look at the clock, the metrics and the stop flag while the source is quiet).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .config import ProducerSettings
from .metrics import Metrics, SourceStats
from .post import Post
from .writer import PostWriter, RejectLog

log = logging.getLogger("producer")


class Reject(NamedTuple):
    line: int  # line of a file, or frame of a stream
    reason: str
    raw: str | bytes  # the input, or its beginning when it was too large to keep
    size: int | None = None  # the input's size in bytes when `raw` is only its beginning


class Source(Protocol):
    name: str  # x, bluesky, replay, synthetic
    origin: str  # where input comes from (file, URL), as written in the rejects file
    reject_unit: str  # "lines", "messages"; "" when the source never rejects
    stats: SourceStats

    def __iter__(self) -> Iterator[Post | Reject | None]: ...

    def progress(self) -> tuple[float, float | None, str]:
        """(done, total or None, description) for the progress display."""
        ...

    def position(self) -> int:
        """The line or frame being read (for rejects found after parsing)."""
        ...

    def close(self) -> None: ...


class StopFlag:
    """Set by SIGINT/SIGTERM (a second SIGINT stops at once) or by the code."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._old: dict[int, object] = {}

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s: stopping; waiting for the posts in flight (SIGINT again to stop at once)", name)
        self.set(name)

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()


@dataclass
class RunResult:
    sent: int
    delivered: int
    failed: int
    pending: int
    rejected: int
    elapsed: float
    rejects_path: Path | None
    stopped_by: str = ""
    error: BaseException | None = None
    errors: tuple[str, ...] = ()  # the first delivery errors


def rejects_path(settings: ProducerSettings, stem: str) -> Path:
    return Path(settings.rejects_dir) / f"{stem}.{time.strftime('%Y%m%dT%H%M%S')}.rejects.jsonl"


def run(
    source: Source,
    settings: ProducerSettings,
    *,
    console: Console,
    rejects: RejectLog,
    writer: PostWriter | None = None,
    max_posts: int | None = None,
    duration: float | None = None,
    stop: StopFlag | None = None,
) -> RunResult:
    writer = writer or PostWriter(settings)
    stop = stop or StopFlag()
    metrics = Metrics(source.name, settings.topic, writer.stats, rejects, source.stats)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    stop.install()
    error: BaseException | None = None
    t0 = time.monotonic()
    try:
        with _progress(console) as progress:
            done, total, description = source.progress()
            task = progress.add_task(description, total=total, completed=done)
            error = _pump(source, writer, rejects, metrics, progress, task, settings, stop, t0, max_posts, duration)
            progress.update(task, completed=source.progress()[0])
    finally:
        source.close()
        stop.restore()
    pending = writer.flush()
    rejects.close()
    metrics.close()
    s = writer.stats
    return RunResult(
        s.sent,
        s.delivered,
        s.failed,
        pending,
        rejects.count,
        time.monotonic() - t0,
        rejects.path if rejects.count else None,
        stop.reason,
        error,
        tuple(s.errors),
    )


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _pump(
    source: Source,
    writer: PostWriter,
    rejects: RejectLog,
    metrics: Metrics,
    progress: Progress,
    task,
    settings: ProducerSettings,
    stop: StopFlag,
    t0: float,
    max_posts: int | None,
    duration: float | None,
) -> BaseException | None:
    """The hot loop. Returns the exception that ended the source, if any."""
    encode, produce, topic = writer.fast_path()
    stats = writer.stats
    origin = source.origin
    origin_name = Path(origin).name if source.name == "replay" else origin
    deadline = t0 + duration if duration else None
    log_every = settings.log_interval_s
    tick_every = log_every if log_every > 0 else 10.0  # the rate gauge is refreshed even without log lines
    next_progress, next_tick = t0, t0 + tick_every
    posts = 0
    countdown = 0
    try:
        for item in source:
            if item.__class__ is Post:
                try:
                    value = encode(item)
                except (TypeError, ValueError, AttributeError, OverflowError) as e:
                    rejects.add(origin, source.position(), f"cannot encode: {e}", repr(item))
                    continue
                try:
                    produce(topic, value, item.id.encode())
                except BufferError:  # local queue full
                    writer.produce_when_room(value, item.id.encode())
                stats.sent += 1
                posts += 1
                if posts == max_posts:
                    stop.set("max posts")
                    break
                countdown -= 1
                if countdown > 0:
                    continue
            elif item is not None:
                rejects.add(origin, item.line, item.reason, item.raw, item.size)
                if rejects.count <= 10:
                    progress.console.print(
                        f"[yellow]rejected[/] {escape(origin_name)} line {item.line}: {escape(item.reason)}",
                        highlight=False,
                    )  # a reason may quote input
            # housekeeping: every 256 posts, and whenever the source is idle or rejects
            countdown = 256
            if stop.is_set():
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                stop.set("duration")
                break
            if now >= next_progress:
                next_progress = now + 0.2
                writer.poll(0)
                done, total, description = source.progress()
                progress.update(task, completed=done, total=total, description=description)
            if now >= next_tick:
                line = metrics.tick()
                if log_every > 0:
                    log.info(line)
                next_tick = now + tick_every
    except Exception as e:  # the source failed for good (after its own retries): stop, deliver what was sent
        log.error("%s: stopped on error: %s", source.name, e)
        return e
    return None


def report(console: Console, topic: str, result: RunResult, reject_unit: str) -> int:
    """Print what was delivered (and rejected); returns the exit code (1 if any delivery failed)."""
    rate = result.delivered / result.elapsed if result.elapsed > 0 else 0.0
    line = f"sent {result.delivered} posts to '{topic}' in {result.elapsed:.2f}s ({rate:,.0f} posts/s)"
    console.print(line + (f"; rejected {result.rejected} {reject_unit}" if reject_unit else ""), highlight=False)
    if result.rejects_path is not None:
        console.print(f"rejected {reject_unit or 'input'} kept in {result.rejects_path}", highlight=False)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        console.print(f"stopped by {result.stopped_by}", highlight=False)
    code = 0
    if result.failed or result.pending:
        for err in result.errors:
            console.print(f"[red]delivery failed:[/] {escape(err)}", highlight=False)
        console.print(f"[red]{result.failed} posts failed delivery, {result.pending} still pending[/]")
        code = 1
    if result.error is not None:
        console.print(f"[red]stopped on error:[/] {escape(str(result.error))}", highlight=False)
        code = 1
    return code
