"""Rerank over late sentence vectors: the candidate sentences holding most of the question's rare terms are
also read alone, and the closer reading counts, so a question about one sentence's fact finds it as over
separate vectors, without embedding every candidate at question time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.context import RunContext
from agents.nodes._readings import ALONE_READINGS
from agents.nodes.rerank import _similarities
from retrieval.embeddings import OnnxEmbedder
from retrieval.index import SentenceVector
from tests.agents.nodes.test_answer_late_vectors import WEIGHS, _context

QUESTION = "How tall is it and what is its weight in kilograms?"


def _stored_units(home: Path, embedder: OnnxEmbedder, mode: str) -> tuple[list[SentenceVector], RunContext]:
    ctx, index = _context(home, embedder, mode)
    (chunk,) = index.chunks_of("stone")
    return index.sentences_of([chunk])[chunk.chunk_id], ctx


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_a_rare_term_sentence_is_read_alone_over_late_vectors(
    tmp_path: Path, embedder: OnnxEmbedder, mode: str
) -> None:
    units, ctx = _stored_units(tmp_path, embedder, mode)
    question = embedder.embed_query(QUESTION)
    rarity = [1.0 if u.text == WEIGHS else 0.0 for u in units]
    found = dict(
        zip(
            [u.text for u in units],
            _similarities({"c": units}, {"c": rarity}, question, ctx)["c"],
            strict=True,
        )
    )
    stored = {u.text: float(u.vector @ question) for u in units}
    alone_weighs = float(embedder.embed_query(WEIGHS) @ question)
    assert ctx.pooled_sentence_vectors is (mode == "late")
    if mode == "late":
        # Pooled, the answering sentence also reads the stele's other facts; alone it is closer.
        assert alone_weighs > stored[WEIGHS]
        assert found == pytest.approx(stored | {WEIGHS: alone_weighs}, abs=1e-5)
    else:
        assert found == pytest.approx(stored, abs=1e-6)


def test_only_the_rarest_candidates_are_read_alone_once_per_question(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    units, ctx = _stored_units(tmp_path, embedder, "late")
    extra = 4
    candidates = [
        replace(units[0], sentence_id=f"s{n}", text=f"Cast number {n} of the stele weighs {n} kilograms.")
        for n in range(ALONE_READINGS + extra)
    ]
    question = embedder.embed_query(QUESTION)
    found = {"c": candidates}
    rarity = {"c": [float(n) for n in range(len(candidates))]}
    before = embedder.stats.texts
    first = _similarities(found, rarity, question, ctx)["c"]
    assert embedder.stats.texts - before == ALONE_READINGS
    assert _similarities(found, rarity, question, ctx)["c"] == first
    assert embedder.stats.texts - before == ALONE_READINGS
    stored = [float(u.vector @ question) for u in candidates]
    assert first[:extra] == pytest.approx(stored[:extra], abs=1e-6)
    alone = embedder.embed_documents([u.reading for u in candidates[extra:]]) @ question
    assert first[extra:] == pytest.approx(list(np.maximum(stored[extra:], alone)), abs=1e-5)
