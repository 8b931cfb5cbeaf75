"""The synthetic source: realistic enough to exercise the pipeline, and reproducible."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

from producer.config import REPO
from producer.sources.synthetic import HASHTAGS, SyntheticSource, synthetic_posts
from reference import hashtags

N = 20_000


def test_same_seed_same_posts_other_seed_other_posts():
    assert list(synthetic_posts(500, seed=7)) == list(synthetic_posts(500, seed=7))
    assert [p.text for p in synthetic_posts(50, seed=7)] != [p.text for p in synthetic_posts(50, seed=8)]


def test_posts_look_like_the_original_stream():
    posts = list(synthetic_posts(N, seed=3))
    assert len({p.id for p in posts}) == N
    langs = Counter(p.lang for p in posts)
    assert 0.67 < langs["fr"] / N < 0.73 and langs["fr"] + langs["en"] == N
    assert all(p.source == "synthetic" and p.text and "\x00" not in p.text for p in posts)
    words = Counter(len(p.text.split()) for p in posts)
    assert min(words) >= 4 and max(words) <= 30
    assert sum(1 for p in posts if "https://" in p.text) / N > 0.05
    assert sum(1 for p in posts if p.text.startswith("@user")) / N > 0.1
    # event times: 600 posts a minute, in order
    assert posts[600].created_at - posts[0].created_at == 60_000
    assert all(a.created_at <= b.created_at for a, b in zip(posts, posts[1:], strict=False))


def test_hashtag_popularity_is_zipf_like_with_bursts():
    posts = list(synthetic_posts(N, seed=3))
    tags = [set(hashtags(p.text)) for p in posts]
    counts = Counter(tag for p in posts for tag in hashtags(p.text))
    assert set(counts) <= {t.lower() for t in HASHTAGS}
    top = [count for _, count in counts.most_common(5)]
    assert counts.most_common(1)[0][0] == "covid"
    assert top[0] > 1.5 * top[2] > 0  # heavy head
    assert counts["covid"] / counts.get("immunité", 1) > 5  # long tail (a burst may lift a tail tag a little)
    # bursts: some tag rides on hundreds of consecutive posts
    assert max(_longest_run(tags, tag) for tag in counts) >= 200
    # some hashtags are upper-case (counted lower-cased)
    assert any(re.search(r"#[A-ZÉ]{3,}", p.text) for p in posts)


def _longest_run(tags: list[set[str]], tag: str) -> int:
    best = run = 0
    for post_tags in tags:
        run = run + 1 if tag in post_tags else 0
        best = max(best, run)
    return best


def test_rate_paces_the_source():
    import time

    source = SyntheticSource(30, seed=1, rate=100)
    t0 = time.monotonic()
    posts = [p for p in source if p is not None]
    assert len(posts) == 30 and 0.25 < time.monotonic() - t0 < 1.5
    assert posts[1].created_at - posts[0].created_at == 10  # event times follow the rate


def test_the_repo_sample_is_the_generator_output():
    """samples/posts.jsonl is `synthetic --count 1000 --seed 2021 --out ...`: regenerate it when the generator changes."""
    sample = [json.loads(line) for line in (REPO / "samples" / "posts.jsonl").read_text().splitlines()]
    generated = list(synthetic_posts(1000, seed=2021))
    assert [(s["id"], s["text"], s["author_id"], s["lang"]) for s in sample] == [
        (p.id, p.text, p.author_id, p.lang) for p in generated
    ]


def test_out_writes_replayable_x_api_lines(tmp_path):
    out = tmp_path / "posts.jsonl"
    subprocess.run(
        [sys.executable, "-m", "producer.cli", "synthetic", "--count", "5", "--seed", "9", "--out", str(out)],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [f"syn-9-{i}" for i in range(5)]
    assert lines[0]["created_at"] == "2021-03-01T08:00:00.000Z" and set(lines[0]) == {
        "id",
        "text",
        "created_at",
        "author_id",
        "lang",
    }
