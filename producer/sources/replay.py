"""Replay of JSON lines files of X API v2 tweet objects: as fast as possible, or at
the original pace times a factor. Event times are kept as they are in the file.

The file is read in binary, a line at a time, never more than `max_line_bytes` (+2 for
the line end) at once: a longer line is rejected and the rest of it skipped in chunks.
Whatever a line holds, it becomes a post or a `Reject` with a reason; the replay goes on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from ..metrics import SourceStats
from ..post import Post, Rejected, epoch_millis, parse_json, post_from_tweet
from ..run import Reject
from . import wait_until

SKIP_CHUNK = 1 << 16  # the rest of an oversize line is read (and dropped) this much at a time
PREVIEW = 10_000  # the beginning of an oversize line kept for the rejects file


class ReplaySource:
    name = "replay"
    reject_unit = "lines"

    def __init__(
        self, path: Path, *, speed: float | None = None, max_text_bytes: int = 100_000, max_line_bytes: int = 1_048_576
    ):
        """speed: None or 0 for as fast as possible; 1 for the original pace; 10 for ten times faster."""
        self.path = Path(path)
        self.origin = str(path)
        self.speed = speed or None
        self.max_text_bytes = max_text_bytes
        self.max_line_bytes = max_line_bytes
        self.stats = SourceStats()
        self._size = self.path.stat().st_size
        self._file = None
        self._line = 0

    def __iter__(self) -> Iterator[Post | Reject | None]:
        max_bytes = self.max_text_bytes
        first_event = start = None
        with open(self.path, "rb") as self._file:
            for line, raw, size in self._lines():
                self._line = line  # the position, for progress reports while this iterates
                if size is not None:
                    yield Reject(self._line, f"line too large: {size} bytes (limit {self.max_line_bytes})", raw, size)
                    continue
                if not raw.strip():
                    continue
                try:
                    obj = parse_json(raw)
                    post = post_from_tweet(obj, source="replay", max_text_bytes=max_bytes)
                except Rejected as e:
                    yield Reject(self._line, str(e), raw)
                    continue
                if self.speed is not None and epoch_millis(obj.get("created_at")) is not None:
                    if first_event is None:
                        first_event, start = post.created_at, time.monotonic()
                    yield from wait_until(start + (post.created_at - first_event) / 1000 / self.speed)
                yield post

    def _lines(self) -> Iterator[tuple[int, bytes, int | None]]:
        """(line number, line without its end, None), or for a line over max_line_bytes
        (line number, its first PREVIEW bytes, its size): such a line is never held whole."""
        limit = self.max_line_bytes
        readline = self._file.readline
        number = 0
        while True:
            line = readline(limit + 2)  # the line, its \r\n, or more than the limit
            if not line:
                return
            number += 1
            if line.endswith(b"\n") or len(line) < limit + 2:  # the whole line
                line = line.rstrip(b"\r\n")
                if len(line) <= limit:
                    yield number, line, None
                else:
                    yield number, line[:PREVIEW], len(line)
                continue
            preview, size, tail = line[:PREVIEW], len(line), line[-2:]
            while not tail.endswith(b"\n"):
                more = readline(SKIP_CHUNK)
                if not more:
                    break
                size += len(more)
                tail = (tail + more)[-2:]
            size -= len(tail) - len(tail.rstrip(b"\r\n"))
            yield number, preview, size

    def progress(self) -> tuple[float, float | None, str]:
        done = self._file.tell() if self._file is not None and not self._file.closed else self._size
        return done, self._size, f"replay {self.path.name} (bytes)"

    def position(self) -> int:
        return self._line

    def close(self) -> None:
        pass
