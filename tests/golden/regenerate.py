"""Rebuild the golden files from the reference implementation (reference/__init__.py).

    .venv/bin/python -m tests.golden.regenerate

The input is made here, deterministically; review the diff of the expected
files before committing: they are what the Flink SQL is held to.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import reference
from stack import pipeline

HERE = Path(__file__).resolve().parent
T0 = int(datetime(2021, 3, 1, 8, 0, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_input() -> list[dict]:
    posts = []

    def post(pid, text, ms, record_ms=None):
        # record_ms: the Kafka record's timestamp the test writes it with (default: 2 s after created_at)
        posts.append(
            {
                "id": pid,
                "text": text,
                "created_at": iso(ms),
                "author_id": "golden",
                "lang": "fr",
                "record_ms": ms + 2000 if record_ms is None else record_ms,
            }
        )

    # tricky tokenization, minute 0
    tricky = [
        "Le #vaccin arrive! #Covid #covid à Paris",
        "#Santé publique et #SANTÉ mentale, #santé. l'école d’été aujourd'hui",
        "Chiffres #COVID-19: #2020 non, #2021vaccin oui; anti-vaccin covid19",
        "Lire https://example.org/page#fragment et www.site.fr/#ancre puis #vaccin",
        unicodedata.normalize("NFD", "#Santé d'abord, Élève ÉLÈVE"),
        "mot#pasunhashtag email@x.fr#non (#confinement) #confinement! #CONFINEMENT?",
        "#covid_19 #_ #__2 #vaccin🎉 #éŒ ##double émoji🎉fête",
        "voir https://t.co/x\u00a0#AprèsNBSP, https://t.co/y#collé et #ΟΔΟΣ #İzmir ΟΔΟΣ",
        "@alice @bob_2 merci! yourselves yourselvesx themselvesque a b c dé",
        "",
        # a writer that does not normalise: decomposed and composed count as one key
        unicodedata.normalize("NFD", "#café au café") + " #café",
        # longer than 100 code points: not counted; 100 exactly: counted
        "#" + "a" * 100 + " #" + "b" * 101 + " " + "c" * 100 + " " + "d" * 101 + " limite",
        "#" + "é" * 99 + "\u0301" * 2 + " " + "x" * 99 + "\u0301" + " fin",
    ]
    for i, text in enumerate(tricky):
        post(f"t{i}", text, T0 + i * 1000)
    post("t0", tricky[0], T0 + 30_000)  # a duplicate id: counted once
    # trends over 80 minutes: a steady tag, a rising one, a late flash
    for m in range(80):
        post(f"steady{m}", f"point du jour #steady minute {m}", T0 + m * MIN + 5_000)
        if m in (10, 40) or m >= 70:
            for k in range(1 if m < 70 else 4):
                post(f"rising{m}-{k}", f"ça monte #rising vague {k}", T0 + m * MIN + 10_000 + k)
        if m >= 77:
            for k in range(3):
                post(f"flash{m}-{k}", f"#flash info urgente {k}", T0 + m * MIN + 20_000 + k)
    post("rising70-0", "ça monte #rising vague 0", T0 + 70 * MIN + 10_000)  # duplicate
    # a poster's clock: created_at far ahead of when the record was written -> the record's time
    post(
        "future9999",
        "#futur lointain",
        int(datetime(9999, 12, 31, 23, 59, tzinfo=UTC).timestamp() * 1000),
        record_ms=T0 + 79 * MIN + 30_000,
    )
    post("future6m", "#futur proche", T0 + 20 * MIN + 6 * MIN, record_ms=T0 + 20 * MIN)  # 6 min ahead: record time
    post("future4m", "#futur admis", T0 + 20 * MIN + 4 * MIN, record_ms=T0 + 20 * MIN)  # 4 min ahead: created_at
    # a dense minute: more distinct words than unigram_minute_tops keeps (1,000): the
    # most used stay, ties at the cut by word (code-point order); 1,352 words used once,
    # "zdense" three times, "ydense" twice
    letters = "abcdefghijklmnopqrstuvwxyz"
    many = [p + a + b for p in ("wq", "wr") for a in letters for b in letters]
    post("dense1", " ".join(many[:700]) + " zdense ydense", T0 + 90 * MIN + 1000)
    post("dense2", " ".join(reversed(many[700:])) + " zdense ydense zdense", T0 + 90 * MIN + 2000)
    # long ago: all-time counts and its own (old) minute
    post("epoch0", "#ancien texte", 0, record_ms=T0)
    post("before1970", "#avant époque", -30_000, record_ms=T0)
    return posts


def expected(posts: list[dict]) -> dict:
    parsed = [
        {
            "id": p["id"],
            "text": p["text"],
            "created_at": reference.event_ms(
                int(datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")).timestamp() * 1000), p["record_ms"]
            ),
        }
        for p in posts
    ]
    return {
        "hashtag_counts": dict(sorted(reference.count_hashtags(parsed).items())),
        "unigram_tops": dict(sorted(reference.top(reference.count_words(parsed)).items())),
        "hashtag_minute_counts": sorted(
            [m, t, n] for (m, t), n in reference.count_per_minute(parsed, reference.hashtags).items()
        ),
        "unigram_minute_tops": sorted(
            [m, t, n]
            for (m, t), n in reference.top_per_minute(reference.count_per_minute(parsed, reference.words)).items()
        ),
        "post_stats": {
            "all": {
                "posts": len(reference.unique(parsed)),
                "newest_event_ms": max(p["created_at"] for p in reference.unique(parsed)),
            }
        },
    }


def main() -> None:
    posts = make_input()
    stem = pipeline.latest().path.stem  # the rules do not change with the script: its golden files
    (HERE / f"{stem}.input.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8"
    )
    (HERE / f"{stem}.expected.json").write_text(
        json.dumps(expected(posts), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(posts)} posts; expected outputs written")


if __name__ == "__main__":
    main()
