"""The live sources' reconnect backoff (producer.sources.live.Backoff), deterministically: a fake clock,
a chosen random draw."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from producer.config import ProducerSettings
from producer.sources.live import Backoff, Drop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Draw:
    """random.Random's uniform(), always at the same fraction of the range."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def failure(drop: Drop) -> SimpleNamespace:
    """What tenacity hands a wait: the attempt's outcome."""
    return SimpleNamespace(outcome=SimpleNamespace(exception=lambda: drop))


# the defaults, spelled out (a .env file or PRODUCER_* variables must not change what is tested)
DEFAULTS = dict(
    reconnect_base_s=0.25,
    reconnect_max_s=16,
    http_error_base_s=5,
    http_error_max_s=320,
    rate_limit_base_s=60,
    rate_limit_max_s=960,
    reconnect_jitter=0.25,
    reconnect_reset_s=30,
)


def backoff(clock: Clock, fraction: float = 0.0, **kw) -> Backoff:
    return Backoff(ProducerSettings(**{**DEFAULTS, **kw}), clock=clock, rng=Draw(fraction))


def test_connections_that_close_at_once_do_not_reset_the_backoff():
    clock = Clock()
    b = backoff(clock)
    waits = []
    for _ in range(4):
        b.opened()  # the handshake worked...
        clock.now += 0.1  # ...and the connection closed right away
        waits.append(b(failure(Drop("network", "connection closed (1006)"))))
    assert waits == [0.25, 0.5, 0.75, 1.0]  # linear, as if it never connected
    waits = []
    for _ in range(3):
        b.opened()
        waits.append(b(failure(Drop("http", "HTTP 503"))))
    assert waits == [5.0, 10.0, 20.0]  # each kind its own count


def test_a_connection_that_stayed_up_or_delivered_a_post_resets_it():
    clock = Clock()
    b = backoff(clock)
    network = Drop("network", "connection closed (1006)")
    assert [b(failure(network)) for _ in range(3)] == [0.25, 0.5, 0.75]
    b.opened()
    clock.now += 29.9
    assert b(failure(network)) == 1.0  # up 29.9 s: not yet a connection that worked
    b.opened()
    clock.now += 30
    assert b(failure(network)) == 0.25  # up 30 s (reconnect_reset_s): reset
    b(failure(network))
    b.opened()
    b.delivered = True  # what LiveSource.emit sets for a post
    assert b(failure(network)) == 0.25  # it delivered: reset, even if it closed at once
    b.opened()
    assert b(failure(network)) == 0.5  # the next connection starts with delivered = False
    assert b(failure(network)) == 0.75  # a failure without a connection never resets


def test_waits_have_jitter_but_never_go_below_the_schedule_or_the_servers_word():
    clock = Clock()
    top = backoff(clock, fraction=1.0)
    assert [top(failure(Drop("network", "x"))) for _ in range(2)] == [0.3125, 0.625]  # + 25 % (reconnect_jitter)
    assert top(failure(Drop("rate_limit", "HTTP 429"))) == 75.0
    settings = ProducerSettings(**DEFAULTS)
    waits = {Backoff(settings)(failure(Drop("rate_limit", "HTTP 429"))) for _ in range(50)}  # real random draws
    assert all(60.0 <= w <= 75.0 for w in waits) and len(waits) > 1  # spread, from 1 min
    told = backoff(clock, fraction=0.0)
    assert told(failure(Drop("rate_limit", "HTTP 429", retry_after=200.0))) == 200.0  # not before Retry-After
    assert told(failure(Drop("rate_limit", "HTTP 429", retry_after=5000.0))) == 960.0  # within rate_limit_max_s


@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_the_linear_steps_stop_at_the_maximum(jitter):
    b = backoff(Clock(), 1.0, reconnect_jitter=jitter)
    waits = [b(failure(Drop("network", "x"))) for _ in range(80)]
    assert waits[-1] == 16.0 * (1 + jitter) and max(waits) == waits[-1]
