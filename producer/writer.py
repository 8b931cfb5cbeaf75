"""Writes posts to Kafka as Avro through the registry (Confluent wire format)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from .avro import SchemaRegistrationError, make_encoder, register
from .config import ProducerSettings
from .post import Post, safe_text

log = logging.getLogger("producer")


@dataclass
class DeliveryStats:
    sent: int = 0  # handed to the producer
    failed: int = 0  # delivery reported as failed by the broker or librdkafka
    in_flight: int = 0  # not yet acknowledged (as of the last flush or metrics read)
    errors: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        """Acknowledged by the broker (acks=all)."""
        return self.sent - self.failed - self.in_flight


def producer_config(settings: ProducerSettings) -> dict:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": "tweetstream-producer",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_size,
        "queue.buffering.max.messages": 1_000_000,
        "message.timeout.ms": settings.message_timeout_ms,
        # a delivery report for failures only: no Python callback per delivered post;
        # delivered = sent - failed - still in flight
        "delivery.report.only.error": True,
        **settings.kafka,
    }


class PostWriter:
    """One encoder, one producer, delivery failures reported through a callback, poll(0) now and then
    (never a flush per post)."""

    def __init__(self, settings: ProducerSettings, registry: SchemaRegistryClient | None = None):
        self.topic = settings.topic
        self.subject = settings.subject
        schema = Path(settings.schema_file).read_text()
        registry = registry or SchemaRegistryClient({"url": settings.registry_url, "timeout": 30})
        self.schema_id = register(
            registry,
            self.subject,
            schema,
            schema_file=str(settings.schema_file),
            compatibility=settings.schema_compatibility,
        )
        self._encode = make_encoder(schema, self.schema_id, Post._fields)
        self._producer = Producer(
            {**producer_config(settings), "on_delivery": self._on_delivery, "error_cb": self._on_error}
        )
        self.stats = DeliveryStats()
        self._unpolled = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # not called for successes (delivery.report.only.error), but harmless
            return
        self.stats.failed += 1
        if len(self.stats.errors) < 10:
            self.stats.errors.append(f"post {msg.key()!r}: {err.str()}")
        if self.stats.failed <= 10:
            log.error("delivery failed for post %r to %s: %s", msg.key(), self.topic, err.str())
        elif self.stats.failed in (11, 100, 1000, 10_000) or self.stats.failed % 100_000 == 0:
            log.error("%d delivery failures so far (first ones above)", self.stats.failed)

    def _on_error(self, err: KafkaError) -> None:
        """Client-level errors (broker down, ...): librdkafka retries on its own; fatal ones are raised."""
        if err.fatal():
            raise KafkaException(err)
        log.warning("kafka: %s", err.str())

    def encode(self, post: Post) -> bytes:
        return self._encode(post)

    def send(self, post: Post) -> None:
        """Queue one post (key = post id). Raises TypeError/ValueError/UnicodeError if it cannot be encoded."""
        value = self._encode(post)
        try:
            self._producer.produce(self.topic, value, post.id.encode())
        except BufferError:
            self.produce_when_room(value, post.id.encode())
        self.stats.sent += 1
        self._unpolled += 1
        if self._unpolled >= 1000:
            self._unpolled = 0
            self._producer.poll(0)

    def fast_path(self) -> tuple:
        """(encode, produce, topic) for a loop that sends many posts: `produce(topic, encode(post), key)`,
        `produce_when_room` on BufferError, and `stats.sent` counted by the loop. `send` is this, one post at a time."""
        return self._encode, self._producer.produce, self.topic

    def produce_when_room(self, value: bytes, key: bytes) -> None:
        """The local queue is full: serve deliveries until it takes the record."""
        while True:
            self._producer.poll(0.05)
            try:
                self._producer.produce(self.topic, value, key)
                return
            except BufferError:
                continue

    def poll(self, timeout: float = 0) -> None:
        """Serve delivery reports and refresh the in-flight count."""
        self._producer.poll(timeout)
        self.stats.in_flight = len(self._producer)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every delivery report; returns how many are still outstanding."""
        pending = self._producer.flush(timeout)
        self.stats.in_flight = pending
        return pending


class RejectLog:
    """Rejected input, one JSON line each (where it came from, why, the raw input), for inspection.

    Writing never fails on what the input holds: the raw input is kept as text (UTF-8 as it is; invalid
    bytes and lone surrogates as backslash escapes, `\\xe9`, `\\ud800`), cut to its first `preview_bytes`
    bytes, with its size in bytes: `{"source", "line", "reason", "raw", "bytes", "truncated"}`."""

    def __init__(self, path: Path, preview_bytes: int = 10_000):
        self.path = path
        self.preview_bytes = preview_bytes
        self.count = 0
        self.by_reason: dict[str, int] = {}
        self._file = None

    def add(self, origin: str, line_no: int, reason: str, raw: str | bytes, size: int | None = None) -> None:
        """size: the raw input's size in bytes, when `raw` is only its beginning (default: len(raw) in UTF-8)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # line-buffered: readable live; backslashreplace: nothing unwritable gets this far, but never raise
            self._file = open(self.path, "a", encoding="utf-8", errors="backslashreplace", buffering=1)
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "backslashreplace")
        elif isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        elif not isinstance(raw, bytes):
            try:
                raw = safe_text(repr(raw)).encode()
            except (RecursionError, ValueError):  # too deep, or an integer too long to print
                raw = f"<{type(raw).__name__} that cannot be printed>".encode()
        size = len(raw) if size is None else size
        preview = raw[: self.preview_bytes]
        reason = safe_text(reason)
        self.count += 1
        kind = reason.split(":", 1)[0]
        self.by_reason[kind] = self.by_reason.get(kind, 0) + 1
        self._file.write(
            json.dumps(
                {
                    "source": safe_text(origin),
                    "line": line_no,
                    "reason": reason,
                    "raw": preview.decode("utf-8", "backslashreplace"),
                    "bytes": size,
                    "truncated": size > len(preview),
                },
                ensure_ascii=False,
            )
            + "\n"
        )

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


__all__ = ["PostWriter", "RejectLog", "DeliveryStats", "KafkaException", "SchemaRegistrationError", "producer_config"]
