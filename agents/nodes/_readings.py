"""How close stored sentences are to a question, when their vectors were pooled in their chunk's context.

A late (pooled) sentence vector leans towards its chunk's other sentences, so a question about one
sentence's fact finds it less than the sentence embedded alone would ("What event happened 66 million
years ago?" on xquad-en). Reading every candidate alone at question time tripled the question's time, so
only the few candidates most likely to answer, by a score the caller gives, are also read alone; the closer
reading counts. Over separate vectors the stored vector already is the sentence alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.context import RunContext
from retrieval.hits import SentenceVector

ALONE_READINGS = 16
"""Over pooled sentence vectors: how many candidates, those of highest score, are also read alone."""


def similarities(
    units: Sequence[SentenceVector], scores: Sequence[float], vector: np.ndarray, ctx: RunContext
) -> list[float]:
    """Each unit's cosine similarity with ``vector``; over pooled vectors the :data:`ALONE_READINGS` units
    of highest positive ``scores`` are also read alone (once per question) and the closer reading counts."""
    if not units:
        return []
    found = [float(x) for x in np.stack([u.vector for u in units]) @ vector]
    if not ctx.pooled_sentence_vectors:
        return found
    best = sorted(range(len(units)), key=lambda i: scores[i], reverse=True)[:ALONE_READINGS]
    chosen = [i for i in best if scores[i] > 0]
    if chosen:
        alone = ctx.embed([units[i].reading for i in chosen]) @ vector
        for i, similarity in zip(chosen, alone, strict=True):
            found[i] = max(found[i], float(similarity))
    return found
