"""Read an upsert topic the way the sink does: Avro through the registry,
committed records only, the last value per key (a tombstone deletes it)."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

KAFKA = "127.0.0.1:9092"
REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"


def create_topics(names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for fut in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        fut.result()


def delete_topics(names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for fut in admin.delete_topics(names).values():
        try:
            fut.result()
        except Exception:
            pass


def read_table(topic: str) -> dict[tuple, dict]:
    """{key fields as a tuple: value record} for everything committed so far."""
    registry = SchemaRegistryClient({"url": REGISTRY, "timeout": 10})
    # subjects named after the topic, as Flink registers them (no look-up of
    # "associations", an API the Apicurio registry does not have)
    decode = AvroDeserializer(registry, conf={"subject.name.strategy.type": "TOPIC"})
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    table: dict[tuple, dict] = {}
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        position = 0
        while position < high:
            msg = consumer.poll(1.0)
            if msg is None:
                # the end of a transactional log holds markers no record stands for
                position = consumer.position([TopicPartition(topic, 0)])[0].offset
                if position >= high - 1:
                    break
                continue
            if msg.error():
                raise RuntimeError(msg.error())
            position = msg.offset() + 1
            key = decode(msg.key(), SerializationContext(topic, MessageField.KEY))
            key = tuple(key.values())
            if msg.value() is None:
                table.pop(key, None)
            else:
                table[key] = decode(msg.value(), SerializationContext(topic, MessageField.VALUE))
    finally:
        consumer.close()
    return table
