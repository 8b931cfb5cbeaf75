import unicodedata

import pytest

from producer.post import Rejected, clean_text, epoch_millis, post_from_json_line


def test_text_is_nfc_without_nul():
    decomposed = unicodedata.normalize("NFD", "Santé\x00!")
    assert clean_text(decomposed) == "Santé!"


def test_x_api_tweet_becomes_a_post():
    post = post_from_json_line(
        '{"id": "42", "text": "hi #x", "created_at": "2021-03-01T10:00:00.000Z", '
        '"author_id": 7, "lang": "fr", "extra": true}'
    )
    assert (post.id, post.text, post.created_at, post.author_id, post.lang) == ("42", "hi #x", 1614592800000, "7", "fr")


def test_numeric_id_is_kept_as_text():
    assert post_from_json_line('{"id": 8, "text": "t"}').id == "8"


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"id": "1", "text": "x', "invalid JSON: Unterminated string starting at (column 21)"),
        ('{"text": "no id"}', "missing field: id"),
        ('{"id": "", "text": "empty id"}', "missing field: id"),
        ('{"id": "1"}', "missing field: text"),
        ('{"id": "1", "text": null}', "missing field: text"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": true, "text": "bool id"}', "missing field: id"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line, reason):
    with pytest.raises(Rejected) as e:
        post_from_json_line(line)
    assert str(e.value) == reason


def test_oversize_text_is_rejected():
    with pytest.raises(Rejected, match="text too large: 11 bytes"):
        post_from_json_line('{"id": "1", "text": "0123456789a"}', max_text_bytes=10)


@pytest.mark.parametrize(
    "value, millis",
    [
        ("2021-03-01T10:00:00.000Z", 1614592800000),
        ("2021-03-01T11:00:00+01:00", 1614592800000),
        ("2021-03-01T10:00:00", 1614592800000),
        ("not a date", None),
        (None, None),
    ],
)
def test_created_at(value, millis):
    assert epoch_millis(value) == millis
