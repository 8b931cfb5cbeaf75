"""Sources of posts. Each is an iterable of Post, Reject and None (see producer.run)."""

from __future__ import annotations

import time
from collections.abc import Iterator

IDLE_STEP_S = 0.2  # a waiting source yields None this often, so the run loop stays responsive


def wait_until(target: float) -> Iterator[None]:
    """Sleep until time.monotonic() reaches `target`, yielding None every IDLE_STEP_S."""
    while True:
        left = target - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, IDLE_STEP_S))
        yield None
