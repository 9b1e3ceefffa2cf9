"""Dataset shapes unlike the default generator's: many skewed classes, two classes, short texts.

Tests and ``bench/generalisation_bench.py`` use them to check that training holds up on
any team's tickets, not only on the eight balanced-ish categories it was tuned on.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from boltit.training.generator import CATEGORIES, generate_tickets

_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "sa", "no", "vi", "de", "pu", "ga", "zo")


def _site(index: int) -> str:
    """A made-up site or application name, distinct per index."""
    first, rest = divmod(index, len(_SYLLABLES))
    second, third = divmod(first, len(_SYLLABLES))
    return _SYLLABLES[rest] + _SYLLABLES[third % len(_SYLLABLES)] + _SYLLABLES[second % 3] + "x"


def skewed_teams(
    n: int = 3000,
    *,
    n_classes: int = 64,
    singletons: int = 3,
    skew: float = 1.3,
    named_share: float = 0.8,
    seed: int = 7,
) -> pd.DataFrame:
    """Tickets routed to ``n_classes`` assignment groups with a Zipf-skewed mix.

    Each group handles one generator category at one site; ``named_share`` of its
    tickets name the site (otherwise only the category's wording hints at the group).
    The last ``singletons`` groups get exactly one ticket each.

    Returns:
        Columns ``text`` and ``category`` (the group's name, with spaces and punctuation).
    """
    if n_classes < 2 or not 0 <= singletons < n_classes or n <= singletons:
        raise ValueError("need n_classes >= 2, 0 <= singletons < n_classes and n > singletons")
    rng = np.random.default_rng(seed)
    regular = n_classes - singletons
    weights = 1.0 / np.arange(1, regular + 1) ** skew
    teams = np.concatenate(
        [
            rng.choice(regular, size=n - singletons, p=weights / weights.sum()),
            np.arange(regular, n_classes),
        ]
    )
    rng.shuffle(teams)
    category_of = [CATEGORIES[t % len(CATEGORIES)] for t in range(n_classes)]
    needed = Counter(category_of[t] for t in teams)
    pools: dict[str, list[str]] = {
        category: [
            str(t)
            for t in generate_tickets(count, seed=seed + i, category_weights={category: 1.0})[
                "text"
            ]
        ]
        for i, (category, count) in enumerate(sorted(needed.items()))
    }
    taken = dict.fromkeys(pools, 0)
    texts, labels = [], []
    for team in teams:
        category = category_of[team]
        text = pools[category][taken[category]]
        taken[category] += 1
        if rng.random() < named_share:
            text = f"{text} (site {_site(int(team))})"
        texts.append(text)
        labels.append(f"{category} / {_site(int(team)).upper()}-{team}")
    return pd.DataFrame({"text": texts, "category": labels})


def two_classes(n: int = 2000, *, seed: int = 7) -> pd.DataFrame:
    """Access versus Administrative rights: the generator's most confusable pair, 70/30."""
    frame = generate_tickets(
        n, seed=seed, category_weights={"Access": 0.7, "Administrative rights": 0.3}
    )
    return frame[["text", "category"]]


def short_texts(n: int = 3000, *, words: int = 5, seed: int = 7) -> pd.DataFrame:
    """Default-mix tickets cut to their first ``words`` words after the greeting."""
    frame = generate_tickets(n, seed=seed)
    frame["text"] = frame["text"].map(lambda t: " ".join(t.split()[1 : 1 + words]))
    return frame[["text", "category"]]
