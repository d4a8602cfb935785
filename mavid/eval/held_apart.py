"""Ways of asking kept apart from the knowledge base they are read with: a dev set made like
the test (`benchmarks/spoken_dev.py`).

The test's held-out questions were kept out of the knowledge base with every way of asking
spelt like (rapidfuzz ratio >= 75) or meaning nearly the same as (cosine >= 0.9) its intent's
held-out question. `left_out` does the same to ways of asking drawn from the base itself, so a
setting can be chosen on them without the test.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from rapidfuzz import fuzz

from mavid.conductor.knowledge import Knowledge, KnowledgeConfig


def left_out(
    knowledge: Knowledge, n: int, rng: np.random.Generator
) -> tuple[KnowledgeConfig, list[tuple[int, str]]]:
    """The base without `n` drawn ways of asking and every text near one; (entry, text) said."""
    config = knowledge.config
    pool = [(k, t) for k, e in enumerate(config.entries) for t in e.also]
    drawn = [pool[i] for i in rng.choice(len(pool), min(n, len(pool)), replace=False)]
    vectors = {t: knowledge.vector(t) for _, t in pool}

    def near(text: str, other: str) -> bool:
        if fuzz.ratio(text.lower(), other.lower()) >= 75:
            return True
        return text in vectors and other in vectors and float(vectors[text] @ vectors[other]) >= 0.9

    said = {t for _, t in drawn}
    entries = tuple(
        dataclasses.replace(
            e, also=tuple(t for t in e.also if t not in said and not any(near(t, d) for d in said))
        )
        for e in config.entries
    )
    kept = [(k, t) for k, t in drawn if not any(near(q, t) for q in config.entries[k].questions)]
    return dataclasses.replace(config, entries=entries), kept
