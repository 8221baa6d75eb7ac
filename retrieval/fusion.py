"""Reciprocal rank fusion and cutting a ranked list: pure functions over ranked lists."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(
    rankings: Sequence[Sequence[K]], *, k: int = 60, weights: Sequence[float] | None = None
) -> dict[K, float]:
    """Reciprocal rank fusion: each ranked list gives weight / (k + rank) to each of its items."""
    weights = weights if weights is not None else [1.0] * len(rankings)
    fused: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def ranked(scores: Mapping[K, float]) -> list[K]:
    """Keys by descending score; ties keep insertion order."""
    return sorted(scores, key=lambda key: -scores[key])


def gap_cut(scores: Sequence[float], *, lo: int, hi: int) -> int:
    """How many of a descending score list to keep: at the largest relative drop between ``lo`` and ``hi``."""
    n = len(scores)
    if n <= lo:
        return n
    hi = min(hi, n)
    best_at, best_gap = hi, -1.0
    for i in range(lo, hi):
        if i >= n:
            break
        top = scores[0] if scores[0] > 0 else 1.0
        gap = (scores[i - 1] - scores[i]) / top
        if gap > best_gap:
            best_gap, best_at = gap, i
    return best_at
