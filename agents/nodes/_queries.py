"""The MuGI merge of query variants, shared by route and retrieve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.state import QueryVariant


@dataclass(frozen=True)
class MergedQuery:
    """A question and its variants, merged for each kind of search."""

    question: str
    lexical: str
    vector: np.ndarray
    variant_vectors: list[np.ndarray]


def merge_variants(
    variants: list[QueryVariant], embed: Callable[[Sequence[str]], np.ndarray], *, question_repeats: int
) -> MergedQuery:
    """MuGI: the question repeated beside the pseudo-documents for BM25; pooled embeddings for dense."""
    asked = next((v["text"] for v in variants if v["kind"] == "standalone"), variants[0]["text"])
    pseudo = [v["text"] for v in variants if v["kind"] == "pseudo_doc"]
    others = [v["text"] for v in variants if v["kind"] in ("rewrite", "keywords", "feedback")]
    lexical = " ".join([asked] * question_repeats + others + pseudo)
    vectors = embed([v["text"] for v in variants])
    question_vector = vectors[[v["text"] for v in variants].index(asked)]
    pooled = question_vector * len(variants) + vectors.sum(axis=0)
    norm = float(np.linalg.norm(pooled))
    return MergedQuery(
        question=asked,
        lexical=lexical,
        vector=(pooled / norm if norm else pooled).astype(np.float32),
        variant_vectors=list(vectors),
    )
