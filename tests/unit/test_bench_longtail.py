"""The benchmark's long-tail data and its batched-consumer baseline, without services:
the generator is reproducible, realistic (a long Zipf tail of words and hashtags),
valid (NFC, no NUL), fast; the baseline's tokenizer is the reference implementation's."""

import time
import unicodedata
from collections import Counter

import pytest

import reference
from bench.batched_consumer import Counts, Writer, tokenize
from bench.longtail import long_tail_posts, vocabulary
from producer.sources.synthetic import synthetic_posts

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
N = 100_000


@pytest.fixture(scope="module")
def sample():
    return list(long_tail_posts(N, seed=11, run_id="unit", start_ms=START))


@pytest.fixture(scope="module")
def counted(sample):
    words, tags = Counter(), Counter()
    for p in sample:
        words.update(reference.words(p.text))
        tags.update(reference.hashtags(p.text))
    return words, tags


def test_same_seed_same_posts_other_seed_other_posts():
    a = list(long_tail_posts(2000, seed=5, run_id="r", start_ms=START))
    assert a == list(long_tail_posts(2000, seed=5, run_id="r", start_ms=START))
    b = list(long_tail_posts(2000, seed=6, run_id="r", start_ms=START))
    assert sum(x.text != y.text for x, y in zip(a, b, strict=False)) > 1900
    # another run: the same posts under fresh ids
    c = list(long_tail_posts(2000, seed=5, run_id="s", start_ms=START))
    assert [p.text for p in c] == [p.text for p in a] and not {p.id for p in a} & {p.id for p in c}


def test_ids_unique_and_fresh_by_default(sample):
    assert len({p.id for p in sample}) == N
    one = [p.id for p in long_tail_posts(100, seed=1)]
    two = [p.id for p in long_tail_posts(100, seed=1)]
    assert not set(one) & set(two)  # a uuid per run: never an id an earlier run sent
    assert all(i.startswith("lt-") for i in one)


def test_texts_are_valid_posts(sample):
    for p in sample:
        assert p.text and "\x00" not in p.text and unicodedata.is_normalized("NFC", p.text), p
        assert p.lang in ("fr", "en") and p.source == "synthetic" and p.author_id
        assert 8 <= len(p.text.split()) <= 40


def test_post_shapes(sample):
    words_per_post = [len(p.text.split()) for p in sample]
    assert 14 <= sum(words_per_post) / N <= 22
    tags = Counter(len(reference.hashtags(p.text)) for p in sample)
    assert set(tags) == {0, 1, 2, 3} and 0.25 < tags[0] / N < 0.35
    assert 0.1 < sum("@" in p.text for p in sample) / N < 0.3
    assert 0.08 < sum(("https://" in p.text or "www." in p.text) for p in sample) / N < 0.16
    text = " ".join(p.text for p in sample[:5000])
    for shape in ("é", "è", "ç", "'", "\u2019", "-", "#"):
        assert shape in text, shape
    langs = Counter(p.lang for p in sample)
    assert 0.6 < langs["fr"] / N < 0.7


def test_event_times_spread_over_hours(sample):
    times = [p.created_at for p in sample]
    assert min(times) >= START - 2000
    assert (max(times) - min(times)) / 3_600_000 > 1.5  # 1,000 posts a minute by default: 100 minutes
    assert len({reference.minute(t) for t in times}) >= 100
    # roughly in order (a little disorder, as in a real stream)
    assert all(b - a > -3000 for a, b in zip(times, times[1:], strict=False))


def test_default_event_times_end_now_not_in_the_future():
    before = int(time.time() * 1000)
    posts = list(long_tail_posts(5000, seed=2))
    assert max(p.created_at for p in posts) <= int(time.time() * 1000)
    assert min(p.created_at for p in posts) >= before - 5000 * 60 - 10_000  # 5 minutes of posts, ending now


def test_long_tail_vocabulary(counted):
    words, tags = counted
    assert 20_000 <= len(words) <= 99_999, len(words)  # tens of thousands of distinct words in 100k posts
    assert len(tags) >= 5_000, len(tags)
    ranked = [c for _, c in words.most_common()]
    # Zipf-like: count falls about as 1/rank
    assert ranked[0] > 100 * ranked[999]
    assert ranked[9] > 5 * ranked[99] and ranked[99] > 5 * ranked[999]
    assert sum(1 for c in ranked if c == 1) > 0.1 * len(ranked)  # a long tail of words seen once
    tag_ranked = [c for _, c in tags.most_common()]
    assert tag_ranked[0] > 100 * tag_ranked[999]
    # the stopword lists are among the most frequent tokens of the raw text
    raw = Counter(
        w.lower()
        for p in list(long_tail_posts(5000, seed=3, run_id="x", start_ms=START))
        for w in reference.WORD.findall(p.text)
    )
    assert sum(1 for w, _ in raw.most_common(50) if w in reference.STOPWORDS) >= 20


def test_vocabulary_is_built_once():
    assert vocabulary() is vocabulary()


TRICKY = [
    "#Santé et #SANTÉ",
    "#COVID-19",
    "#2020 #2020s",
    "https://example.org/a#fragment",
    "www.example.org/#x and #y",
    "https://example.org/\u00a0#after_nbsp",
    "mot#non, (#oui) #fin.",
    "#a_b #_ #__1",
    "##double",
    "#vaccin🎉",
    unicodedata.normalize("NFD", "#Santé"),
    "#İstanbul",
    "Le vaccin arrive à Paris",
    "l'école d’été aujourd'hui",
    "anti-vaccin COVID19 covid-19",
    "#vaccin @alice www.x.fr/mot https://t.co/abc mot",
    "email@example.org mot#tag",
    "a b c dé x",
    unicodedata.normalize("NFD", "Élève ÉLÈVE"),
    "yourselves yourselvesx themselvesque",
    "ΟΔΟΣ İzmir",
    "émoji🎉fête",
    "HTTP://upper.case/#x WWW.upper/#y",
    "#" + "a" * 100 + " #" + "b" * 101,
    "mot" * 40 + " court",
    "x\u0301y e\u0301\u0301 \u0301a",
    "@#tag #@mention",
    "",
    "   ",
]


def test_batched_tokenizer_is_the_reference():
    texts = TRICKY + [p.text for p in long_tail_posts(5000, seed=8, run_id="t", start_ms=START)]
    texts += [p.text for p in synthetic_posts(2000, seed=8)]
    for text in texts:
        assert tokenize(text) == (reference.hashtags(text), reference.words(text)), text


def test_batched_counts_match_the_reference():
    posts = list(long_tail_posts(3000, seed=9, run_id="c", start_ms=START))
    posts += posts[:100]  # repeated ids count once
    counts = Counts()
    for p in posts:
        counts.add(p.id, p.text, p.created_at, p.created_at + 50)
    recs = [{"id": p.id, "text": p.text, "created_at": p.created_at} for p in posts]
    assert counts.posts == 3000
    assert counts.counters["hashtag_counts"] == reference.count_hashtags(recs)
    assert counts.counters["unigram_counts"] == reference.count_words(recs)
    assert counts.counters["unigram_minute_counts"] == reference.count_per_minute(recs, reference.words)
    assert counts.counters["hashtag_minute_counts"] == reference.count_per_minute(recs, reference.hashtags)
    # nothing written yet: every changed key is new, with its whole count
    assert counts.dirty["unigram_counts"] == counts.counters["unigram_counts"]
    snap = Writer.snapshot(counts)
    new, old = snap["rows"]["unigram_minute_counts"]
    assert not old and sorted(new) == sorted((*k, c) for k, c in counts.counters["unigram_minute_counts"].items())
    assert not any(counts.dirty.values())
    more = list(long_tail_posts(200, seed=10, run_id="d", start_ms=START))
    for p in more:
        counts.add(p.id, p.text, p.created_at, p.created_at + 50)
    new, old = Writer.snapshot(counts)["rows"]["unigram_counts"]
    c = counts.counters["unigram_counts"]
    assert old and all(c[w] == n and n > 1 for w, n in old) and all(c[w] == n for w, n in new)
    assert {w for w, _ in new} == {w for p in more for w in reference.words(p.text)} - {
        w for p in posts for w in reference.words(p.text)
    }


def test_resume_detector_after_a_jobmanager_kill():
    from bench.soak import ResumeDetector

    # the sink writes what the dead job committed, the count stays flat while the job is away, then grows
    d = ResumeDetector(at_kill=1000)
    samples = [(0.5, 1000), (1.0, 1400), (1.5, 1400)] + [(2 + i * 0.5, 1400) for i in range(60)] + [(33.0, 1900)]
    got = [d.feed(t, n) for t, n in samples]
    assert d.plateau == 1400 and d.base == 1400 and got[-1] == 33.0 and all(g is None for g in got[:-1])
    assert d.feed(34.0, 2500) == 33.0  # the first resumption stays
    # a job back before the count was flat for long: its first growth counts
    d = ResumeDetector(at_kill=1000)
    assert d.feed(1.0, 1200) is None and d.feed(2.0, 1200, job_running=True) is None
    assert d.feed(3.0, 1300, job_running=True) == 3.0
    assert d.plateau is None and d.base == 1200  # what "a second's worth of posts counted again" counts from
    # never back: never resumed
    d = ResumeDetector(at_kill=1000)
    assert all(d.feed(t / 2, 1000) is None for t in range(200))


def test_results_merge_keeps_what_a_run_did_not_measure():
    from bench.pipeline_bench import merge

    old = {"machine": {"date": "d1"}, "throughput": {"long-tail": {"n": 1}, "synthetic": {"n": 2}}, "soak": {"s": 1}}
    # a long-tail run replaces long-tail only, keeps synthetic and the soak
    new = merge(old, {"machine": {"date": "d2"}, "throughput": {"long-tail": {"n": 3}}})
    assert new == {
        "machine": {"date": "d2"},
        "throughput": {"long-tail": {"n": 3}, "synthetic": {"n": 2}},
        "soak": {"s": 1},
    }
    # a soak run replaces the soak only
    assert merge(new, {"machine": {"date": "d3"}, "soak": {"s": 2}})["throughput"] == new["throughput"]
    assert merge(None, {"throughput": {}}) == {"throughput": {}}
