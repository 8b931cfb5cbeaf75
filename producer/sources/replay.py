"""Replay of JSON lines files of X API v2 tweet objects: as fast as possible, or at
the original pace times a factor. Event times are kept as they are in the file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from ..metrics import SourceStats
from ..post import Post, Rejected, epoch_millis, parse_json, post_from_tweet
from ..run import Reject
from . import wait_until


class ReplaySource:
    name = "replay"
    reject_unit = "lines"

    def __init__(self, path: Path, *, speed: float | None = None, max_text_bytes: int = 100_000):
        """speed: None or 0 for as fast as possible; 1 for the original pace; 10 for ten times faster."""
        self.path = Path(path)
        self.origin = str(path)
        self.speed = speed or None
        self.max_text_bytes = max_text_bytes
        self.stats = SourceStats()
        self._size = self.path.stat().st_size
        self._file = None
        self._line = 0

    def __iter__(self) -> Iterator[Post | Reject | None]:
        max_bytes = self.max_text_bytes
        first_event = start = None
        with open(self.path, "rb") as self._file:
            for self._line, raw in enumerate(self._file, start=1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    obj = parse_json(raw)
                    post = post_from_tweet(obj, source="replay", max_text_bytes=max_bytes)
                except Rejected as e:
                    yield Reject(self._line, str(e), raw.decode("utf-8", errors="replace"))
                    continue
                if self.speed is not None and epoch_millis(obj.get("created_at")) is not None:
                    if first_event is None:
                        first_event, start = post.created_at, time.monotonic()
                    yield from wait_until(start + (post.created_at - first_event) / 1000 / self.speed)
                yield post

    def progress(self) -> tuple[float, float | None, str]:
        done = self._file.tell() if self._file is not None and not self._file.closed else self._size
        return done, self._size, f"replay {self.path.name} (bytes)"

    def position(self) -> int:
        return self._line

    def close(self) -> None:
        pass
