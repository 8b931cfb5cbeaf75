"""The compiled Avro encoder writes exactly what fastavro (and so confluent-kafka) writes."""

from __future__ import annotations

import io
import json
from typing import NamedTuple

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from producer.avro import compile_encoder, confluent_header, make_encoder
from producer.config import ProducerSettings
from producer.post import Post
from producer.sources.synthetic import synthetic_posts

SCHEMA = ProducerSettings().schema_file.read_text()


def reference(schema: str, schema_id: int, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(confluent_header(schema_id))
    schemaless_writer(buf, parse_schema(json.loads(schema)), record)
    return buf.getvalue()


EDGE_CASES = [
    Post("1", "", 0, None, None, "x"),
    Post("é" * 9000, "ü" * 70_000, -1, "a", "fr", "bluesky"),  # lengths past the varint table
    Post("2", "t", 2**63 - 1, "", "", ""),
    Post("3", "t", -(2**63), None, "en"),
    Post("4", "emoji 🎉 and NUL-free", 1614592800000, "123", None, "replay"),
]


@pytest.mark.parametrize("post", EDGE_CASES)
def test_compiled_encoder_matches_fastavro(post):
    encode = make_encoder(SCHEMA, 123456, Post._fields)
    assert encode(post) == reference(SCHEMA, 123456, post.to_record())


def test_compiled_encoder_matches_fastavro_on_generated_posts():
    encode = make_encoder(SCHEMA, 77, Post._fields)
    for post in synthetic_posts(2000, seed=1):
        assert encode(post) == reference(SCHEMA, 77, post.to_record()), post


def test_header_is_the_confluent_wire_format():
    value = make_encoder(SCHEMA, 0x01020304, Post._fields)(EDGE_CASES[0])
    assert value[:5] == b"\x00\x01\x02\x03\x04"
    decoded = schemaless_reader(io.BytesIO(value[5:]), parse_schema(json.loads(SCHEMA)))
    assert decoded == EDGE_CASES[0].to_record()


def test_values_of_the_wrong_type_are_refused():
    encode = make_encoder(SCHEMA, 1, Post._fields)
    with pytest.raises(TypeError, match="author_id"):
        encode(Post("1", "t", 0, 42))
    with pytest.raises((TypeError, AttributeError)):
        encode(Post("1", None, 0))


def test_a_new_field_with_a_default_is_written_with_its_default():
    evolved = json.loads(SCHEMA)
    evolved["fields"].append({"name": "reply_count", "type": "long", "default": 7})
    evolved["fields"].append({"name": "place", "type": ["null", "string"], "default": None})
    text = json.dumps(evolved)
    post = EDGE_CASES[4]
    assert make_encoder(text, 9, Post._fields)(post) == reference(
        text, 9, {**post.to_record(), "reply_count": 7, "place": None}
    )


def test_other_types_fall_back_to_fastavro():
    class Tagged(NamedTuple):
        id: str
        tags: list
        score: float
        ok: bool

    schema = json.dumps(
        {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "id", "type": "string"},
                {"name": "tags", "type": {"type": "array", "items": "string"}},
                {"name": "score", "type": "double"},
                {"name": "ok", "type": "boolean"},
            ],
        }
    )
    value = Tagged("a", ["x", "y"], 1.5, True)
    assert make_encoder(schema, 3, Tagged._fields)(value) == reference(schema, 3, value._asdict())


def test_primitive_records_compile():
    schema = {
        "type": "record",
        "name": "P",
        "fields": [
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"},
            {"name": "raw", "type": "bytes"},
            {"name": "n", "type": "null"},
            {"name": "u", "type": ["null", "long", "string"]},
        ],
    }

    class P(NamedTuple):
        f: float
        d: float
        b: bool
        i: int
        raw: bytes
        n: None
        u: object

    encode = compile_encoder(schema, b"H")
    for value in (
        P(1.25, -2.5, True, -5, b"\x00\xff", None, None),
        P(0.0, 1e300, False, 2**31 - 1, b"", None, 12),
        P(3.5, 0.1, True, -(2**31), b"x" * 20_000, None, "s"),
    ):
        assert encode(value) == b"H" + reference(json.dumps(schema), 0, value._asdict())[5:]
