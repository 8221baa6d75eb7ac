"""How close stored sentences are to a question, when their vectors were pooled in their chunk's context.

A late (pooled) sentence vector leans towards its chunk's other sentences, so a question about one
sentence's fact finds it less than the sentence embedded alone would ("What event happened 66 million
years ago?" on xquad-en). Where passages of many documents compete (rerank), every candidate sentence is
read alone: the agent's vector memo (:mod:`agents.vector_memo`) embeds each text once, so a question pays
only for the sentences no earlier question read. Elsewhere only a few candidates are read alone: those the
caller's score (the question's rare terms they hold) puts first, and for the drill-down also those the
pooled vectors put first. Over separate vectors the stored vector already is the sentence alone.

Measured over late vectors against separate ones: rerank reading 16 candidates alone (8 by rare terms, 8 by
pooled similarity) and ranking them first lost nih-14's evidence from the first five (nih-protocols
evidence_recall@5 0.745 against 0.766): its passage's closest sentence was not among the 16. Reading all of
them matches or passes separate vectors on all four datasets (nih-protocols 0.777); a question pays for the
sentences no earlier question read: p50 above separate's by 0.56 s on nih-protocols' long protocols, 0.41 s
on hotpotqa-500 (whose questions rarely share documents), 0.08 s on ntsb-reports, none on xquad-en.
Inside one document (the drill-down) the units read alone rank by the mean of both readings: that put a
table row's evidence first for one more question on nih-protocols and on ntsb-reports (evidence_recall@1
+0.021 each), answered one more of 200 on xquad-en and changed nothing on hotpotqa-500.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.context import RunContext
from retrieval.hits import SentenceVector

ALONE_READINGS = 16
"""Over pooled sentence vectors: how many candidates, those of highest score, are also read alone."""
BELOW_READ_ALONE = 2.0
"""Subtracted from a pooled similarity to rank it below every similarity read alone (cosines lie in ±1)."""


def similarities(
    units: Sequence[SentenceVector], scores: Sequence[float], vector: np.ndarray, ctx: RunContext
) -> list[float]:
    """Each unit's cosine similarity with ``vector``; over pooled vectors the :data:`ALONE_READINGS` units
    of highest positive ``scores`` are also read alone (once per text per agent) and the closer reading
    counts."""
    found = _stored(units, vector)
    for i, similarity in _read_alone(units, _first(scores, ALONE_READINGS), vector, ctx).items():
        found[i] = max(found[i], similarity)
    return found


def alone(units: Sequence[SentenceVector], vector: np.ndarray, ctx: RunContext) -> list[float]:
    """Each unit's cosine similarity with ``vector``, every unit read alone (over pooled vectors, embedded
    once per text by the agent's memo)."""
    if not ctx.pooled_sentence_vectors:
        return _stored(units, vector)
    readings = _read_alone(units, list(range(len(units))), vector, ctx)
    return [readings[i] for i in range(len(units))]


def alone_first(
    units: Sequence[SentenceVector], scores: Sequence[float], vector: np.ndarray, ctx: RunContext
) -> list[float]:
    """Similarities for picking one of a document's units: over pooled vectors, the units of highest
    positive ``scores`` and of highest pooled similarity are read alone and rank by the mean of both
    readings; the rest follow in their pooled order. Inside one document every chunk is about its subject,
    and a unit's chunk tells which part of it the unit is in (the weather section of an accident report, a
    table's columns)."""
    found = _stored(units, vector)
    if not ctx.pooled_sentence_vectors:
        return found
    half = ALONE_READINGS // 2
    chosen = list(dict.fromkeys(_first(scores, half) + _first(found, half, positive=False)))
    read = _read_alone(units, chosen, vector, ctx)
    return [
        (read[i] + similarity) / 2 if i in read else similarity - BELOW_READ_ALONE
        for i, similarity in enumerate(found)
    ]


def _stored(units: Sequence[SentenceVector], vector: np.ndarray) -> list[float]:
    return [float(x) for x in np.stack([u.vector for u in units]) @ vector] if units else []


def _first(scores: Sequence[float], count: int, *, positive: bool = True) -> list[int]:
    """Positions of the ``count`` highest scores (only those above 0 when ``positive``)."""
    best = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:count]
    return [i for i in best if scores[i] > 0 or not positive]


def _read_alone(
    units: Sequence[SentenceVector], chosen: list[int], vector: np.ndarray, ctx: RunContext
) -> dict[int, float]:
    """The chosen units' similarities read alone, over pooled vectors; none over separate ones."""
    if not chosen or not ctx.pooled_sentence_vectors:
        return {}
    alone = ctx.embed([units[i].reading for i in chosen]) @ vector
    return {i: float(similarity) for i, similarity in zip(chosen, alone, strict=True)}
