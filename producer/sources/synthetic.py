"""Synthetic posts: French and English vocabulary, Zipf-like hashtag popularity,
bursts of one topic; reproducible from a seed (same seed, same posts)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timezone

from ..post import Post

HASHTAGS = [
    "covid", "vaccin", "covid19", "confinement", "santé", "masque", "pandemie", "vaccination",
    "pfizer", "variant", "omicron", "passsanitaire", "hôpital", "télétravail", "couvrefeu",
    "stayhome", "lockdown", "booster", "who", "coronavirus", "testcovid", "écoles", "soignants",
    "economie", "moderna", "quarantaine", "santépublique", "sciences", "deltavariant", "immunité",
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
START = datetime(2021, 3, 1, 8, 0, tzinfo=timezone.utc)


def synthetic_posts(count: int, seed: int = 42, start: datetime = START, posts_per_minute: int = 600) -> Iterator[Post]:
    """`count` posts, ~posts_per_minute apart in event time; one topic bursts now and then."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(HASHTAGS))]  # Zipf-like
    start_ms = int(start.timestamp() * 1000)
    step_ms = 60_000 / posts_per_minute
    burst_tag, burst_left = None, 0
    for i in range(count):
        if burst_left == 0 and rng.random() < 0.002:
            burst_tag, burst_left = rng.choice(HASHTAGS[5:]), rng.randint(200, 800)
        french = rng.random() < 0.7
        words, glue = (WORDS_FR, GLUE_FR) if french else (WORDS_EN, GLUE_EN)
        body = [rng.choice(glue) if rng.random() < 0.35 else rng.choice(words) for _ in range(rng.randint(6, 18))]
        tags = rng.choices(HASHTAGS, weights, k=rng.choice((0, 1, 1, 2, 2, 3)))
        if burst_left:
            tags.append(burst_tag)
            burst_left -= 1
        for tag in tags:
            body.insert(rng.randint(0, len(body)), "#" + (tag.upper() if rng.random() < 0.1 else tag))
        if rng.random() < 0.1:
            body.append(f"https://example.org/{rng.randint(1, 9999)}#{rng.choice(HASHTAGS)}")
        if rng.random() < 0.15:
            body.insert(0, f"@user{rng.randint(1, 500)}")
        yield Post(
            id=f"syn-{seed}-{i}",
            text=" ".join(body),
            created_at=start_ms + int(i * step_ms),
            author_id=str(rng.randint(1, 5000)),
            lang="fr" if french else "en",
            source="synthetic",
        )
