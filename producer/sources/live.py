"""What the live sources (X, Bluesky) share: a client thread feeding a queue,
reconnects with backoff (tenacity), and a clean stop."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential, wait_incrementing

from ..config import ProducerSettings
from ..metrics import SourceStats
from ..post import Post, safe_text
from ..run import Reject
from . import IDLE_STEP_S

log = logging.getLogger("producer")


class Drop(Exception):
    """A connection ended or failed. kind picks the backoff: network, http or rate_limit."""

    def __init__(self, kind: str, reason: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.retryable, self.retry_after = kind, reason, retryable, retry_after


class SourceError(RuntimeError):
    """A live source cannot go on (refused credentials, a subscription without access, a bad URL)."""


class Backoff:
    """A tenacity wait: network errors back off linearly, HTTP errors and 429s exponentially, each wait
    lengthened by a random 0 to `reconnect_jitter` of itself (so that many clients dropped at once do not
    come back in step). Each kind counts its failures since the last connection that worked.

    A connection that worked is one that delivered a post (`delivered`) or stayed up `reconnect_reset_s`
    (from `opened`): only then are the counts reset, when it ends. A connection that closes as soon as it
    opens (a server accepting and dropping every connection, a frame that always kills it) is a failure
    like any other, and the waits keep growing. `reset` is for request/response sources (a poll that worked)."""

    def __init__(
        self,
        settings: ProducerSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.max_rate_limit = settings.rate_limit_max_s
        self.jitter = settings.reconnect_jitter
        self.reset_after = settings.reconnect_reset_s
        self.waits = {
            "network": wait_incrementing(
                start=settings.reconnect_base_s, increment=settings.reconnect_base_s, max=settings.reconnect_max_s
            ),
            "http": wait_exponential(
                multiplier=settings.http_error_base_s, min=settings.http_error_base_s, max=settings.http_error_max_s
            ),
            "rate_limit": wait_exponential(
                multiplier=settings.rate_limit_base_s, min=settings.rate_limit_base_s, max=settings.rate_limit_max_s
            ),
        }
        self.failures: Counter[str] = Counter()
        self.clock = clock
        self.rng = rng or random.Random()
        self.delivered = False  # set by the source when the current connection delivers a post
        self._opened: float | None = None

    def opened(self) -> None:
        """A connection is up (it has yet to show that it works)."""
        self._opened = self.clock()
        self.delivered = False

    def reset(self) -> None:
        self.failures.clear()

    def __call__(self, retry_state: RetryCallState) -> float:
        if self._opened is not None and (self.delivered or self.clock() - self._opened >= self.reset_after):
            self.failures.clear()  # the connection that just ended had worked
        self._opened, self.delivered = None, False
        drop = retry_state.outcome.exception() if retry_state.outcome else None
        kind = drop.kind if isinstance(drop, Drop) else "network"
        self.failures[kind] += 1
        delay = self.waits[kind](SimpleNamespace(attempt_number=self.failures[kind]))
        delay *= 1 + self.rng.uniform(0, self.jitter)
        if isinstance(drop, Drop) and drop.retry_after:  # the server said when: not sooner, within reason
            delay = max(delay, min(drop.retry_after, self.max_rate_limit))
        return delay


class LiveSource:
    """A client running in its own thread (`serve`), handing posts and rejects over a queue.

    The run loop reads the queue; `close` (or SIGINT/SIGTERM in the run loop) stops the
    client, and a client that fails for good re-raises its error in the run loop."""

    name = "live"
    reject_unit = "messages"
    # credentials of the source: masked in every reconnect reason and error (a server may echo them back)
    secrets: tuple[str, ...] = ()

    def __init__(self, settings: ProducerSettings, origin: str):
        self.settings = settings
        self.origin = origin
        self.stats = SourceStats()
        self.stopping = threading.Event()
        self.backoff = Backoff(settings)
        self.frames = 0
        self.posts = 0
        self._queue: queue.Queue = queue.Queue(maxsize=50_000)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ---- in the client thread
    def serve(self) -> None:
        raise NotImplementedError

    def emit(self, item: Post | Reject) -> None:
        if item.__class__ is Post:
            self.backoff.delivered = True
        while not self.stopping.is_set():
            try:
                self._queue.put(item, timeout=IDLE_STEP_S)
                return
            except queue.Full:
                continue

    def reject(self, reason: str, raw: str | bytes, size: int | None = None) -> None:
        self.emit(Reject(self.frames, reason, raw, size))

    def retrying(self, on_drop: Callable[[Drop, float], None] | None = None) -> Retrying:
        """Retry while the failure is a retryable Drop and no stop was asked; sleeps end early on stop."""

        def before_sleep(rs: RetryCallState) -> None:
            drop = rs.outcome.exception()
            drop.reason = self.scrub(drop.reason)
            self.stats.reconnect(drop.reason)
            log.warning("%s: %s; reconnecting in %.2fs", self.name, drop.reason, rs.upcoming_sleep)
            if on_drop:
                on_drop(drop, rs.upcoming_sleep)

        return Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, Drop) and e.retryable),
            wait=self.backoff,
            stop=lambda rs: self.stopping.is_set(),
            sleep=self.stopping.wait,
            before_sleep=before_sleep,
            reraise=True,
        )

    def scrub(self, text: str) -> str:
        """The text without the source's secrets, and printable (lone surrogates a server sent, escaped)."""
        text = safe_text(text)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _main(self) -> None:
        try:
            self.serve()
        except Drop as e:
            if not self.stopping.is_set():
                self._error = SourceError(self.scrub(f"{self.name}: {e.reason}"))
        except BaseException as e:  # noqa: BLE001 - handed to the run loop
            if not self.stopping.is_set():
                message = str(e)
                self._error = e if self.scrub(message) == message else SourceError(self.scrub(message))

    # ---- in the run loop
    def __iter__(self) -> Iterator[Post | Reject | None]:
        self._thread = threading.Thread(target=self._main, name=f"{self.name} client", daemon=True)
        self._thread.start()
        get = self._queue.get
        while True:
            try:
                item = get(timeout=IDLE_STEP_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    break
                yield None
                continue
            if item.__class__ is Post:
                self.posts += 1
            yield item
        if self._error is not None:
            raise self._error

    def progress(self) -> tuple[float, float | None, str]:
        reconnects = sum(self.stats.reconnects.values())
        return (
            self.posts,
            None,
            f"{self.name}: {self.posts:,} posts from {self.frames:,} messages, "
            f"{self.stats.skipped:,} skipped, {reconnects} reconnects",
        )

    def position(self) -> int:
        return self.frames

    def interrupt(self) -> None:
        """Unblock the client thread if it waits on the network (called by close)."""

    def close(self) -> None:
        self.stopping.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("%s: client thread still busy after 5s; leaving it", self.name)
