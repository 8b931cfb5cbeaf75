"""Producer metrics for the user: a log line every few seconds, and a Prometheus endpoint.

The hot path only bumps plain integers (DeliveryStats, RejectLog, SourceStats);
the Prometheus collector reads them when scraped, so metrics cost nothing per post.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .writer import DeliveryStats, RejectLog

log = logging.getLogger("producer")


@dataclass
class SourceStats:
    """What a source counts besides posts: input it skipped on purpose, and reconnects by reason."""

    skipped: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)

    def reconnect(self, reason: str) -> None:
        self.reconnects[reason] = self.reconnects.get(reason, 0) + 1


class Metrics:
    def __init__(
        self, source: str, topic: str, stats: DeliveryStats, rejects: RejectLog, source_stats: SourceStats | None = None
    ):
        self.source, self.topic = source, topic
        self.stats, self.rejects = stats, rejects
        self.source_stats = source_stats or SourceStats()
        self.started = time.monotonic()
        self._last_t, self._last_delivered = self.started, 0
        self.rate = 0.0  # posts delivered per second over the last interval
        self.server = None
        self.port: int | None = None

    def tick(self) -> str:
        """Recompute the rate and return the log line."""
        now = time.monotonic()
        s = self.stats
        delivered = s.delivered
        if now > self._last_t:
            self.rate = (delivered - self._last_delivered) / (now - self._last_t)
        self._last_t, self._last_delivered = now, delivered
        line = (
            f"{self.source} -> '{self.topic}': sent {s.sent:,}, delivered {delivered:,} ({self.rate:,.0f}/s), "
            f"rejected {self.rejects.count:,}, delivery errors {s.failed:,}, in flight {s.in_flight:,}"
        )
        if self.source_stats.skipped:
            line += f", skipped {self.source_stats.skipped:,}"
        if self.source_stats.reconnects:
            line += ", reconnects " + ", ".join(f"{k} {v}" for k, v in sorted(self.source_stats.reconnects.items()))
        return line

    def serve(self, host: str, port: int) -> None:
        """Prometheus text at http://host:port/metrics; a port in use is a warning, not a failure."""
        if port < 0:
            return
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        try:
            self.server, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as e:
            log.warning("metrics endpoint not started on %s:%d (%s); set --metrics-port", host, port, e.strerror)
            return
        self.port = self.server.server_port
        log.info("metrics at http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Collector(Collector):
    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self) -> Iterator:
        m, s = self.m, self.m.stats
        labels = ["source", "topic"]
        values = [m.source, m.topic]

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(f"tweetstream_producer_{name}", doc, labels=labels)
            c.add_metric(values, value)
            return c

        yield counter("posts_sent", "Posts handed to the Kafka producer", s.sent)
        yield counter("posts_delivered", "Posts acknowledged by the broker (acks=all)", s.delivered)
        yield counter("delivery_errors", "Posts whose delivery failed", s.failed)
        yield counter("input_skipped", "Input skipped on purpose (filters, other event kinds)", m.source_stats.skipped)
        rejected = CounterMetricFamily(
            "tweetstream_producer_rejected", "Input rejected, by reason", labels=[*labels, "reason"]
        )
        for reason, n in sorted(m.rejects.by_reason.items()):
            rejected.add_metric([*values, reason], n)
        yield rejected
        reconnects = CounterMetricFamily(
            "tweetstream_producer_reconnects", "Reconnects of a live source, by reason", labels=[*labels, "reason"]
        )
        for reason, n in sorted(m.source_stats.reconnects.items()):
            reconnects.add_metric([*values, reason], n)
        yield reconnects
        rate = GaugeMetricFamily(
            "tweetstream_producer_rate", "Posts delivered per second over the last interval", labels=labels
        )
        rate.add_metric(values, m.rate)
        yield rate
        in_flight = GaugeMetricFamily(
            "tweetstream_producer_in_flight", "Posts sent but not yet acknowledged", labels=labels
        )
        in_flight.add_metric(values, s.in_flight)
        yield in_flight
        up = GaugeMetricFamily(
            "tweetstream_producer_uptime_seconds", "Seconds since the producer started", labels=labels
        )
        up.add_metric(values, time.monotonic() - m.started)
        yield up
