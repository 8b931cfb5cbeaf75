import json
import unicodedata
from pathlib import Path

import pytest

from producer.post import Rejected, post_from_json_line
from reference import count_hashtags, hashtags

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("#Santé et #SANTÉ", ["santé", "santé"]),
        ("#COVID-19", ["covid"]),
        ("#2020 #2020s", ["2020s"]),
        ("https://example.org/a#fragment", []),
        ("https://example.org/#fragment", []),
        ("www.example.org/#x and #y", ["y"]),
        ("https://example.org/\u00a0#after_nbsp", ["after_nbsp"]),  # a no-break space ends a URL too
        ("https://example.org/ #after_space", ["after_space"]),
        ("mot#non, (#oui) #fin.", ["oui", "fin"]),
        ("#a_b #_ #__1", ["a_b"]),
        ("##double", ["double"]),
        ("#vaccin🎉", ["vaccin"]),
        (unicodedata.normalize("NFD", "#Santé"), ["santé"]),
        ("#İstanbul", ["i̇stanbul"]),  # Unicode default case mapping, no Turkish rule
    ],
)
def test_reference_hashtags(text, expected):
    assert hashtags(text) == expected


def test_fixture_expectations_match_the_rules():
    """The e2e fixture's hand-counted expectations agree with the reference implementation."""
    expected = json.loads((FIXTURES / "e2e_hashtags.expected.json").read_text())
    posts, rejected = [], 0
    for line in (FIXTURES / "e2e_hashtags.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            post = post_from_json_line(line)
        except Rejected:
            rejected += 1
            continue
        posts.append({"id": post.id, "text": post.text})
    assert len(posts) == expected["posts_sent"]
    assert rejected == expected["lines_rejected"]
    assert dict(count_hashtags(posts)) == expected["hashtags"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Le vaccin arrive à Paris", ["vaccin", "arrive", "paris"]),
        ("l'école d’été aujourd'hui", ["école"]),  # apostrophes split; fragments are stopwords
        ("anti-vaccin COVID19 covid-19", ["anti", "vaccin", "covid", "covid"]),  # hyphens and digits split
        ("#vaccin @alice www.x.fr/mot https://t.co/abc mot", ["mot"]),  # no hashtags, mentions, URLs
        (
            "email@example.org mot#tag",
            ["email", "example", "org", "mot", "tag"],
        ),  # '@'/'#' after a letter: not a mention/hashtag
        ("a b c dé x", ["dé"]),  # one letter is not a word
        (unicodedata.normalize("NFD", "Élève ÉLÈVE"), ["élève", "élève"]),
        ("yourselves yourselvesx themselvesque", ["yourselvesx", "themselvesque"]),  # stopwords match whole words only
        ("ΟΔΟΣ İzmir", ["οδος", "i̇zmir"]),
        ("émoji🎉fête", ["émoji", "fête"]),
    ],
)
def test_reference_words(text, expected):
    from reference import words

    assert words(text) == expected
