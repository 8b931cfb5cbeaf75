"""Long-tail posts for the benchmark: a realistic vocabulary instead of a few dozen words.

The project's synthetic source (producer/sources/synthetic.py) draws from ~150
words and 30 hashtags: every count is a hot key, the count tables stay tiny and
the per-minute tables hold a few hundred rows a minute. Real text is not like
that. This generator draws French- and English-like text from a vocabulary of
tens of thousands of words and hashtags with Zipf popularity (the word of rank r
is used in proportion to 1 / r^s, s ~ 1.05), so that a run keeps meeting new
keys and every minute of event time has thousands of distinct words:

- words: pseudo-words built from French and English syllables (accents,
  cedillas, œ), shorter words more frequent, the real stopword lists
  (sql/stopwords) among the most frequent ranks, some elided or contracted
  (l'…, qu'…, with ' or ’; …'s, …n't) or hyphenated (two words joined by -)
  forms, a capital letter at the start of a sentence, punctuation, an emoji now
  and then;
- 0 to 3 hashtags a post, from their own Zipf vocabulary (single words,
  compounds, camel case, digits, underscores; sometimes upper-cased);
- mentions (@handle), links (https://..., www...; some with a #fragment that
  must not count);
- event times (created_at) spread over real time: `posts_per_minute` apart
  (default 1,000: 300,000 posts span 5 hours, 2,000,000 about 33),
  ending at `start_ms + count / posts_per_minute` minutes, with a little
  disorder (up to 2 s), never in the future of the generation's clock when
  `start_ms` is left to its default (the end of the run is "now");
- fresh ids: `lt-<run id>-<n>`, the run id a random uuid unless given, so a run
  never collides with earlier data (the pipeline drops a repeated id).

Same seed, same run id and same start: the same posts. The vocabulary is built
once per `vocab_seed` (the "language" stays the same from run to run, as real
words do), so the count tables of several runs share their keys.

Fast: 2,000,000 posts take about 30 s on this project's 2-core machine (the
vocabulary is built once, ~1.3 s; a word is one `getrandbits` and one index into
a precomputed 4M-slot table in which each word fills a share of slots equal to
its Zipf weight; a post's 1-3 hashtags are a bisect over cumulative weights).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from producer.post import Post

ZIPF_EXPONENT = 1.05
FR_WORDS = 45_000
EN_WORDS = 30_000
HASHTAGS = 15_000
HANDLES = 20_000
FRENCH_SHARE = 0.65
POSTS_PER_MINUTE = 1000
DISORDER_MS = 2000
TABLE_BITS = 22
TABLE_SIZE = 1 << TABLE_BITS

# ---------------------------------------------------------------- word shapes

FR_ONSETS = (
    "",
    "",
    "b",
    "c",
    "ch",
    "d",
    "d",
    "f",
    "g",
    "gr",
    "j",
    "l",
    "l",
    "m",
    "m",
    "n",
    "p",
    "p",
    "pr",
    "qu",
    "r",
    "r",
    "s",
    "s",
    "t",
    "t",
    "tr",
    "v",
    "br",
    "cl",
    "pl",
    "fl",
    "vr",
    "ç",
    "gn",
    "ph",
)
FR_NUCLEI = (
    "a",
    "a",
    "a",
    "a",
    "e",
    "e",
    "e",
    "e",
    "i",
    "i",
    "i",
    "o",
    "o",
    "o",
    "u",
    "u",
    "é",
    "é",
    "é",
    "è",
    "ê",
    "â",
    "ou",
    "ou",
    "au",
    "eau",
    "ai",
    "ai",
    "ei",
    "oi",
    "an",
    "an",
    "en",
    "en",
    "in",
    "on",
    "on",
    "un",
    "î",
    "ô",
    "û",
    "ù",
    "ï",
    "œu",
    "ui",
    "ie",
    "ia",
)
FR_CODAS = ("", "", "", "", "r", "s", "l", "n", "t", "x", "rt", "nt", "st", "c")
FR_ENDINGS = (
    "",
    "",
    "",
    "",
    "",
    "tion",
    "ment",
    "ité",
    "eur",
    "euse",
    "age",
    "isme",
    "ique",
    "ette",
    "erie",
    "ée",
    "és",
    "ant",
    "ances",
    "ière",
    "eux",
    "ais",
    "ions",
    "aient",
)
EN_ONSETS = (
    "",
    "",
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "y",
    "th",
    "sh",
    "ch",
    "st",
    "tr",
    "br",
    "cr",
    "gr",
    "pl",
    "sl",
    "wh",
    "sp",
    "str",
)
EN_NUCLEI = ("a", "a", "e", "e", "i", "i", "o", "u", "ea", "ee", "oo", "ou", "ai", "oa", "y", "ie", "ow")
EN_CODAS = ("", "", "", "ck", "ng", "nd", "st", "t", "d", "s", "ll", "rk", "sh", "th", "m", "n", "p", "x")
EN_ENDINGS = (
    "",
    "",
    "",
    "",
    "",
    "ing",
    "ed",
    "er",
    "ly",
    "ness",
    "tion",
    "able",
    "ful",
    "less",
    "ment",
    "s",
    "ers",
    "ism",
    "ity",
)
FR_ELISIONS = ("l'", "d'", "qu'", "n'", "j'", "c'", "s'", "m'")
EN_CONTRACTIONS = ("'s", "'re", "'ll", "'ve", "n't", "'d")
EMOJI = ("🎉", "😷", "💉", "🙏", "😂", "❤️", "👍", "🔥", "😡", "🤔")
ENDS = ("", "", "", ".", ".", "!", " !", "?", " ?", "…", "...")
DOMAINS = ("example.org", "t.co", "lemonde.fr", "bbc.co.uk", "youtu.be", "who.int", "santé.gouv.fr", "news.example.com")
# hashtags per post: 0 to 3
TAGS_PER_POST = (0,) * 30 + (1,) * 35 + (2,) * 22 + (3,) * 13
# words per post (before hashtags, mentions, links): 8 to 30, most between 12 and 20
WORDS_PER_POST = tuple(
    itertools.chain.from_iterable(
        [k] * w
        for k, w in zip(
            range(8, 31), (3, 4, 5, 6, 7, 8, 8, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 2, 2), strict=False
        )
    )
)


def _syllabic(rng: random.Random, onsets, nuclei, codas, endings, max_syllables: int) -> str:
    n = 1 + min(int(rng.expovariate(0.9)), max_syllables - 1)
    word = "".join(rng.choice(onsets) + rng.choice(nuclei) for _ in range(n))
    if rng.random() < 0.5:
        word += rng.choice(codas)
    return word + rng.choice(endings)


@dataclass(frozen=True)
class Vocabulary:
    fr: tuple[str, ...]  # by rank, most frequent first
    en: tuple[str, ...]
    hashtags: tuple[str, ...]  # written form, '#' included
    handles: tuple[str, ...]  # '@' included
    fr_table: list[str]  # TABLE_SIZE slots, each word in proportion to its Zipf weight
    en_table: list[str]
    tag_cum: tuple[float, ...]  # cumulative Zipf weights
    handle_cum: tuple[float, ...]


def _cum(n: int, exponent: float) -> tuple[float, ...]:
    return tuple(itertools.accumulate(1.0 / (r**exponent) for r in range(1, n + 1)))


def _table(words: list[str], exponent: float) -> list[str]:
    """A uniform pick from this list is a Zipf pick of `words` (the inverse CDF on TABLE_SIZE
    slots): one getrandbits and one index per word of a post instead of a bisect. With 2^22
    slots even the rarest word of the default vocabularies has about 3 slots."""
    cum = _cum(len(words), exponent)
    scale = TABLE_SIZE / cum[-1]
    table: list[str] = []
    before = 0
    for w, c in zip(words, cum, strict=False):
        upto = round(c * scale)
        table += [w] * (upto - before)
        before = upto
    return table


def _words(rng: random.Random, size: int, shape, stopwords: list[str], elide, seen: set[str]) -> list[str]:
    """`size` distinct word forms by rank: stopwords spread over the top ranks,
    shorter words more frequent (a little noise), some elided/contracted or hyphenated."""
    words: list[str] = []
    while len(words) < size:
        w = unicodedata.normalize("NFC", shape(rng))
        if len(w) < 2 or w in seen:
            continue
        seen.add(w)
        words.append(w)
    words.sort(key=lambda w: len(w) + rng.gauss(0, 2.5))
    out: list[str] = []
    for w in words:
        r = rng.random()
        if r < 0.03:
            w = elide(rng, w)
        elif r < 0.05:
            w = f"{w}-{words[int(rng.random() * len(words))]}"
        out.append(w)
    # function words are the most frequent tokens of real text: half of the top 2 * len(stopwords) ranks
    top = sorted(rng.sample(range(2 * len(stopwords)), len(stopwords)))
    for rank, sw in zip(top, rng.sample(stopwords, len(stopwords)), strict=False):
        out.insert(rank, sw)
    return out[:size]


def _elide_fr(rng: random.Random, w: str) -> str:
    e = rng.choice(FR_ELISIONS)
    return (e if rng.random() < 0.7 else e.replace("'", "\u2019")) + w  # the typographic apostrophe too


def _elide_en(rng: random.Random, w: str) -> str:
    return w + rng.choice(EN_CONTRACTIONS)


_TAG_CHARS = str.maketrans({"'": None, "\u2019": None, "-": None})


def _hashtag(rng: random.Random, fr: list[str], en: list[str]) -> str:
    pool = fr if rng.random() < FRENCH_SHARE else en
    # tags are made of content words, from the whole vocabulary, not only the frequent ones
    a, b = pool[int(rng.random() * len(pool))], pool[int(rng.random() * len(pool))]
    a, b = a.translate(_TAG_CHARS), b.translate(_TAG_CHARS)
    r = rng.random()
    if r < 0.45:
        tag = a
    elif r < 0.65:
        tag = a + b
    elif r < 0.75:
        tag = a[:1].upper() + a[1:] + b[:1].upper() + b[1:]
    elif r < 0.87:
        tag = a + str(rng.choice((19, 20, 21, 2020, 2021, 2022, 1, 2, 3, 24, 7)))
    elif r < 0.95:
        tag = f"{a}_{b}"
    else:
        tag = a.upper()
    return "#" + tag


_HANDLE_CHARS = str.maketrans({"'": None, "\u2019": None, "-": "_"})


def vocabulary(
    vocab_seed: int = 2021,
    exponent: float = ZIPF_EXPONENT,
    fr_words: int = FR_WORDS,
    en_words: int = EN_WORDS,
    hashtags: int = HASHTAGS,
) -> Vocabulary:
    """The vocabulary of a seed (built once per process: about 2 s)."""
    return _vocabulary(vocab_seed, exponent, fr_words, en_words, hashtags)


@functools.lru_cache(maxsize=2)
def _vocabulary(vocab_seed: int, exponent: float, fr_words: int, en_words: int, hashtags: int) -> Vocabulary:
    rng = random.Random(vocab_seed)
    fr_stop, en_stop = _read_stopwords("fr"), _read_stopwords("en")
    if not fr_stop and not en_stop:  # the lists were reorganised: use them all for both languages
        from stack.pipeline import stopwords

        fr_stop = en_stop = stopwords()
    stop = set(fr_stop) | set(en_stop)
    seen: set[str] = set(stop)
    fr = _words(
        rng,
        fr_words,
        lambda g: _syllabic(g, FR_ONSETS, FR_NUCLEI, FR_CODAS, FR_ENDINGS, 4),
        sorted(set(fr_stop)),
        _elide_fr,
        seen,
    )
    en = _words(
        rng,
        en_words,
        lambda g: _syllabic(g, EN_ONSETS, EN_NUCLEI, EN_CODAS, EN_ENDINGS, 3),
        sorted(set(en_stop)),
        _elide_en,
        seen,
    )
    content_fr = [w for w in fr if w not in stop]
    content_en = [w for w in en if w not in stop]
    tags: list[str] = []
    tag_seen: set[str] = set()
    while len(tags) < hashtags:
        t = unicodedata.normalize("NFC", _hashtag(rng, content_fr, content_en))
        if t.lower() not in tag_seen:
            tag_seen.add(t.lower())
            tags.append(t)
    tags.sort(key=lambda t: len(t) + rng.gauss(0, 3))
    pool = content_fr + content_en
    handles = [f"@{rng.choice(pool).translate(_HANDLE_CHARS)}{int(rng.random() * 1000)}" for _ in range(HANDLES)]
    return Vocabulary(
        tuple(fr),
        tuple(en),
        tuple(tags),
        tuple(handles),
        _table(fr, exponent),
        _table(en, exponent),
        _cum(len(tags), exponent),
        _cum(len(handles), 0.9),
    )


def _read_stopwords(lang: str) -> list[str]:
    from stack.pipeline import STOPWORDS_DIR

    path = STOPWORDS_DIR / f"{lang}.txt"
    if not path.exists():
        return []
    return [
        unicodedata.normalize("NFC", w).lower()
        for line in path.read_text(encoding="utf-8").splitlines()
        if (w := line.split("#", 1)[0].strip())
    ]


def long_tail_posts(
    count: int | None,
    seed: int = 1,
    *,
    run_id: str | None = None,
    start_ms: int | None = None,
    posts_per_minute: float = POSTS_PER_MINUTE,
    vocab_seed: int = 2021,
    exponent: float = ZIPF_EXPONENT,
) -> Iterator[Post]:
    """`count` long-tail posts (None: no end). Event times run from `start_ms`
    (default: `count` posts back from now, so that the last post is "now"),
    `posts_per_minute` apart; ids are `lt-<run_id>-<n>` (default run id: a new uuid)."""
    voc = vocabulary(vocab_seed=vocab_seed, exponent=exponent)
    rng = random.Random(seed)
    r, bits = rng.random, rng.getrandbits
    step_ms = 60_000 / posts_per_minute
    if start_ms is None:
        span = int((count or 0) * step_ms)
        start_ms = int(time.time() * 1000) - span - DISORDER_MS
    prefix = f"lt-{run_id or uuid.uuid4().hex[:16]}-"
    fr, _en, tags, handles = voc.fr, voc.en, voc.hashtags, voc.handles
    fr_table, en_table, tag_cum, handle_cum = voc.fr_table, voc.en_table, voc.tag_cum, voc.handle_cum
    n_tags_table, n_words_table = TAGS_PER_POST, WORDS_PER_POST
    len_tags, len_words = len(n_tags_table), len(n_words_table)
    # a bisect per draw, as random.choices does, for the 1-3 draws of a post's tags and handle
    tag_hi, handle_hi = len(tags) - 1, len(handles) - 1
    tag_total, handle_total = tag_cum[-1], handle_cum[-1]
    i = 0
    while count is None or i < count:
        french = r() < FRENCH_SHARE
        k = n_words_table[int(r() * len_words)]
        table = fr_table if french else en_table
        body = [table[bits(TABLE_BITS)] for _ in range(k)]
        first = body[0]
        if r() < 0.6:
            body[0] = first[:1].upper() + first[1:]
        x = r()
        if x < 0.25:  # punctuation inside the sentence
            j = 1 + int(r() * (k - 1))
            body[j] += "," if x < 0.2 else " :"
        for _ in range(n_tags_table[int(r() * len_tags)]):
            tag = tags[bisect.bisect(tag_cum, r() * tag_total, 0, tag_hi)]
            y = r()
            if y < 0.05:
                tag = tag.upper()
            elif y < 0.15:
                tag = tag[:2].upper() + tag[2:]
            if r() < 0.5:
                body.append(tag)  # most tags at the end, as posted
            else:
                body.insert(int(r() * len(body)), tag)
        body[-1] += ENDS[int(r() * 11)]
        y = r()
        if y < 0.2:
            handle = handles[bisect.bisect(handle_cum, r() * handle_total, 0, handle_hi)]
            if y < 0.12:
                body.insert(0, handle)
            else:
                body.insert(int(r() * len(body)), handle)
        y = r()
        if y < 0.12:  # a link, sometimes with a #fragment (not a hashtag)
            dom = DOMAINS[int(r() * 8)]
            path = f"{bits(24):x}"
            link = (f"https://{dom}/{path}" if y < 0.08 else f"www.{dom}/{path}") + (
                "#" + fr[int(r() * 500)] if y < 0.03 else ""
            )
            body.append(link)
        if r() < 0.08:
            body.insert(int(r() * len(body)), EMOJI[int(r() * 10)])
        created = start_ms + int(i * step_ms) - int(r() * DISORDER_MS)
        yield Post(prefix + str(i), " ".join(body), created, str(bits(20)), "fr" if french else "en", "synthetic")
        i += 1


__all__ = ["long_tail_posts", "vocabulary", "Vocabulary", "ZIPF_EXPONENT", "POSTS_PER_MINUTE"]
