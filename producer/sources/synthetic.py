"""Synthetic posts: French and English vocabulary, Zipf-like hashtag popularity,
bursts of one topic; reproducible from a seed (same seed, same posts).

Built for speed (a benchmark source must outrun the broker): each language has
a pool of phrases drawn from its vocabulary once per seed, and a post is a few
phrases with hashtags, sometimes a mention or a link, so a post costs a dozen
random draws instead of one or two per word.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from ..metrics import SourceStats
from ..post import Post
from . import wait_until

HASHTAGS = [
    "covid",
    "vaccin",
    "covid19",
    "confinement",
    "santé",
    "masque",
    "pandemie",
    "vaccination",
    "pfizer",
    "variant",
    "omicron",
    "passsanitaire",
    "hôpital",
    "télétravail",
    "couvrefeu",
    "stayhome",
    "lockdown",
    "booster",
    "who",
    "coronavirus",
    "testcovid",
    "écoles",
    "soignants",
    "economie",
    "moderna",
    "quarantaine",
    "santépublique",
    "sciences",
    "deltavariant",
    "immunité",
]
WORDS_FR = (
    "vaccin dose rendez-vous centre hôpital médecin patients cas nouveaux chiffres semaine gouvernement "
    "mesures école enfants parents masque rue magasin travail maison famille virus épidémie vague "
    "données étude efficacité effets secondaires rappel pharmacie test résultat positif négatif "
    "région ville Paris Lyon Marseille attente espoir fatigue soignants réanimation lits"
).split()
WORDS_EN = (
    "vaccine shot appointment hospital doctor patients cases new numbers week government rules "
    "school children parents mask street shop work home family virus outbreak wave data study "
    "efficacy side effects booster pharmacy test result positive negative region city waiting hope"
).split()
GLUE_FR = "le la les un une des et mais donc pour avec dans sur aujourd'hui encore très".split()
GLUE_EN = "the a an and but so for with in on today still very".split()
START = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)

PHRASE_BITS = 11  # 2048 phrases per language and seed
ZIPF_BITS = 12  # the hashtag table has 4096 entries
FRENCH_SHARE = 0.7
GLUE_SHARE = 0.35  # share of function words in a phrase
ZIPF_EXPONENT = 1.1  # popularity of the hashtag of rank r is proportional to 1 / r^1.1
TAGS_PER_POST = (0, 1, 1, 2, 2, 3)
BURST_CHANCE = 0.002  # per post, when no burst runs: one hashtag then rides on the next 200-800 posts


def _phrases(rng: random.Random, words: list[str], glue: list[str]) -> list[str]:
    r = rng.random
    return [
        " ".join(
            glue[int(r() * len(glue))] if r() < GLUE_SHARE else words[int(r() * len(words))]
            for _ in range(2 + int(r() * 4))
        )
        for _ in range(1 << PHRASE_BITS)
    ]


def zipf_table(size: int = 1 << ZIPF_BITS) -> list[str]:
    """`size` hashtags, each repeated in proportion to its Zipf weight: a uniform pick from it is a Zipf-like pick."""
    weights = [1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(HASHTAGS))]
    total = sum(weights)
    table = [tag for tag, w in zip(HASHTAGS, weights, strict=False) for _ in range(max(1, round(w / total * size)))]
    return (table + table[-1:] * size)[:size]  # rounding: pad with (or cut) the rarest


def synthetic_posts(
    count: int | None, seed: int = 42, start: datetime = START, posts_per_minute: float = 600
) -> Iterator[Post]:
    """`count` posts (None: no end), posts_per_minute apart in event time from `start`."""
    rng = random.Random(seed)
    r, bits = rng.random, rng.getrandbits  # a power-of-two pick: bits(k) is cheaper than int(r() * n)
    french, english = _phrases(rng, WORDS_FR, GLUE_FR), _phrases(rng, WORDS_EN, GLUE_EN)
    table = zipf_table()
    n_tags = len(HASHTAGS)
    as_tag = {t: "#" + t for t in HASHTAGS}
    as_upper_tag = {t: "#" + t.upper() for t in HASHTAGS}
    start_ms = int(start.timestamp() * 1000)
    step_ms = 60_000 / posts_per_minute
    prefix = f"syn-{seed}-"
    burst_tag, burst_left = "", 0
    i = 0
    while count is None or i < count:
        if burst_left == 0 and r() < BURST_CHANCE:
            burst_tag, burst_left = as_tag[HASHTAGS[5 + int(r() * (n_tags - 5))]], 200 + int(r() * 601)
        is_french = r() < FRENCH_SHARE
        pool = french if is_french else english
        body = [pool[bits(PHRASE_BITS)], pool[bits(PHRASE_BITS)]]
        for _ in range(int(r() * 3)):  # 2 to 4 phrases
            body.append(pool[bits(PHRASE_BITS)])
        for _ in range(TAGS_PER_POST[int(r() * 6)]):
            tag = table[bits(ZIPF_BITS)]
            body.insert(int(r() * (len(body) + 1)), as_upper_tag[tag] if r() < 0.1 else as_tag[tag])
        if burst_left:
            body.insert(int(r() * (len(body) + 1)), burst_tag)
            burst_left -= 1
        if r() < 0.1:  # a link whose #fragment is not a hashtag
            body.append(f"https://example.org/{1 + int(r() * 9999)}#{HASHTAGS[int(r() * n_tags)]}")
        if r() < 0.15:
            body.insert(0, f"@user{1 + int(r() * 500)}")
        yield Post(
            prefix + str(i),
            " ".join(body),
            start_ms + int(i * step_ms),
            str(1 + int(r() * 5000)),
            "fr" if is_french else "en",
            "synthetic",
        )
        i += 1


class SyntheticSource:
    """synthetic_posts as a source: as fast as possible, or `rate` posts a second."""

    name = "synthetic"
    origin = "synthetic"
    reject_unit = ""

    def __init__(self, count: int | None, *, seed: int = 42, rate: float | None = None, start: datetime = START):
        self.count, self.seed, self.rate, self.start = count, seed, rate or None, start
        self.stats = SourceStats()
        self._done = 0

    def __iter__(self) -> Iterator[Post | None]:
        # with a rate, event times are spaced like the posts (so --start now gives live-looking times)
        per_minute = self.rate * 60 if self.rate else 600
        posts = synthetic_posts(self.count, seed=self.seed, start=self.start, posts_per_minute=per_minute)
        if self.rate is None:
            for self._done, post in enumerate(posts, start=1):
                yield post
            return
        t0 = time.monotonic()
        for i, post in enumerate(posts):
            yield from wait_until(t0 + i / self.rate)
            yield post
            self._done = i + 1

    def progress(self) -> tuple[float, float | None, str]:
        return self._done, self.count, "synthetic posts"

    def position(self) -> int:
        return self._done

    def close(self) -> None:
        pass
