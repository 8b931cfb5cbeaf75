"""Writes posts to Kafka as Avro through the registry (Confluent wire format)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from .config import ProducerSettings
from .post import Post


@dataclass
class DeliveryStats:
    sent: int = 0          # handed to the producer
    delivered: int = 0     # acknowledged by the broker (acks=all)
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class PostWriter:
    """One serializer, one producer, a delivery callback, poll(0) per post (no flush per post)."""

    def __init__(self, settings: ProducerSettings):
        self.topic = settings.topic
        schema = Path(settings.schema_file).read_text()
        registry = SchemaRegistryClient({"url": settings.registry_url})
        self._serialize = AvroSerializer(registry, schema, conf={"auto.register.schemas": True})
        self._ctx = SerializationContext(self.topic, MessageField.VALUE)
        self._producer = Producer({
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 512 * 1024,
            "queue.buffering.max.messages": 500_000,
        })
        self.stats = DeliveryStats()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
            if len(self.stats.errors) < 10:
                self.stats.errors.append(f"post {msg.key()!r}: {err}")

    def send(self, post: Post) -> None:
        value = self._serialize(post.to_record(), self._ctx)
        while True:
            try:
                self._producer.produce(self.topic, key=post.id.encode(), value=value, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.05)
        self.stats.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every delivery report; returns how many are still outstanding."""
        return self._producer.flush(timeout)


class RejectLog:
    """Rejected input, one JSON line each (where it came from, why, the raw input), for inspection."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._file = None

    def add(self, origin: str, line_no: int, reason: str, raw: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self.count += 1
        self._file.write(json.dumps({"source": origin, "line": line_no, "reason": reason, "raw": raw}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file:
            self._file.close()


__all__ = ["PostWriter", "RejectLog", "DeliveryStats", "KafkaException"]
