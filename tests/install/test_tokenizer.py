"""The pipeline's tokenizer (stack/flink/tokenizer, Java, called by the Flink
SQL) against the reference implementation (reference/__init__.py, Python), on
tricky and generated text: the same hashtags and words, in the same order."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from stack.common import DATA, REPO
from stack.pipeline import latest, stopwords

JAR = DATA.parent / "dist" / "flink-jars" / "tweetstream-tokenizer-1.0.0.jar"


class JavaTokenizer:
    """One JVM running TokenizeLines: a text in, its tokens out, line by line."""

    def __init__(self, tmp_path):
        stop = tmp_path / "stopwords.txt"
        stop.write_text(" ".join(stopwords()), encoding="utf-8")
        self.proc = subprocess.Popen(
            [
                "java",
                "-Duser.language=tr",
                "-Duser.country=TR",  # a locale that would change lower-casing
                "-cp",
                str(JAR),
                "io.github.tweetstream.flink.tokenizer.TokenizeLines",
                str(stop),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, text: str) -> tuple[list[str], list[str]]:
        self.proc.stdin.write(base64.b64encode(text.encode("utf-8")).decode() + "\n")
        self.proc.stdin.flush()
        fields = base64.b64decode(self.proc.stdout.readline()).decode("utf-8").split("\t")
        pairs = list(zip(fields[::2], fields[1::2], strict=False))
        return [t for k, t in pairs if k == "hashtag"], [t for k, t in pairs if k == "word"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def java(tmp_path_factory):
    if not JAR.exists():
        pytest.fail(f"{JAR} is missing: run `make install`")
    tok = JavaTokenizer(tmp_path_factory.mktemp("tokenizer"))
    yield tok
    tok.close()


def expected(text: str) -> tuple[list[str], list[str]]:
    return reference.hashtags(text), reference.words(text)


# the golden input's tricky texts (tests/golden), and a few more edge cases
GOLDEN_TEXTS = sorted(
    {
        json.loads(line)["text"]
        for line in (REPO / "tests" / "golden" / f"{latest().path.stem}.input.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    }
)


@pytest.mark.parametrize(
    "text",
    GOLDEN_TEXTS
    + [
        "#" + "é" * 60 + "\u0301" * 41 + " x" + "\u0301" * 120,  # combining marks count as code points
        "𝐀𝐁 #𝐂𝐃 𝐄#𝐅 \U0001f600#smile",  # letters outside the BMP
        "",
        " ",
        "#",
        "@",
        "##",
        "http://",
        "www.",
        "hxxp://a #b",
    ],
)
def test_tricky_text(java, text):
    assert java(text) == expected(text)


def java_assigned() -> list[tuple[int, int]]:
    """The code point ranges the JVM's Unicode version (13.0 for Java 17) assigns."""
    out = subprocess.run(
        ["java", "-cp", str(JAR), "io.github.tweetstream.flink.tokenizer.TokenizeLines", "--assigned"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(int(a, 16), int(b, 16)) for a, b in (line.split() for line in out.splitlines())]


# Generated characters stay within what both Unicode versions know: assigned
# by the JVM's (the reference's regex module follows a newer one, where
# later-assigned letters are letters), and no lone surrogates (a UTF-8 record
# cannot carry them).
ASSIGNED = java_assigned() if JAR.exists() else [(0, 0x7F)]


def known_to_java(c: str) -> bool:
    cp = ord(c)
    return any(a <= cp <= b for a, b in ASSIGNED)


SPECIAL = list("#@_'’- .,!?\u00a0\u202f\u2009\n\t0123456789") + [
    "\u0301",
    "\u0308",
    "İ",
    "ı",
    "Σ",
    "ς",
    "ß",
    "é",
    "Œ",
    "🎉",
    "𝐀",
    "ǅ",
    "ʰ",
    "http://",
    "https://",
    "www.",
    "#a",
    "@b",
]
any_char = st.characters(exclude_categories=("Cs",)).filter(known_to_java)
pieces = st.one_of(st.sampled_from(SPECIAL), any_char, st.sampled_from(list("abcdeéèàçÉÀxyzΑΒΓабвгдあいう中文ابت")))
texts = st.lists(pieces, max_size=60).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_generated_text(java, text):
    assert java(text) == expected(text)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.text(alphabet=st.sampled_from("aé\u0301Б"), min_size=95, max_size=105))
def test_length_limit_at_the_edge(java, word):
    for text in ("#" + word, word, f"x #{word} {word} y"):
        assert java(text) == expected(text)
