"""What every source's posts go through (producer.post), beyond tests/unit/test_post.py."""

import pytest

from producer.post import Post, Rejected, make_post, parse_json, post_from_json_line


def test_ids_beyond_64_bits_stay_exact():
    assert (
        post_from_json_line('{"id": 123456789012345678901234567890, "text": "t"}').id
        == "123456789012345678901234567890"
    )


def test_lone_surrogates_are_rejected_not_crashing():
    with pytest.raises(Rejected, match="^invalid text: lone surrogate$"):
        post_from_json_line('{"id": "1", "text": "bad \\ud800 text"}')
    with pytest.raises(Rejected, match="^invalid text: lone surrogate$"):
        make_post("1", "bad \ud800 text", 5, source="x")


def test_nul_is_removed_from_every_text_field_and_refused_in_ids():
    post = make_post("1", "a\x00b", 5, "au\x00thor", "f\x00r", source="x")
    assert post == Post("1", "ab", 5, "author", "fr", "x")
    with pytest.raises(Rejected, match="invalid id"):
        make_post("1\x002", "t", 5, source="x")


def test_reasons_have_a_kind_for_counting():
    with pytest.raises(Rejected) as e:
        parse_json(b'{"id": ')
    assert e.value.kind == "invalid JSON"


def test_missing_created_at_is_the_time_of_reading():
    import time

    before = int(time.time() * 1000)
    assert make_post("1", "t", None, source="x").created_at >= before
