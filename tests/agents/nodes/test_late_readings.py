"""Stages that compare single sentences with a question over late (pooled) sentence vectors read them alone
(``agents.nodes._readings``): rerank every candidate, once per text; the drill-down and verify the likeliest
few, the drill-down ranking those before the rest by the mean of both readings, verify keeping the closer
reading. Over separate vectors the stored vector is the reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.context import CallBudget, RunContext
from agents.llm import UsageLedger
from agents.nodes import _drill
from agents.nodes._readings import ALONE_READINGS, BELOW_READ_ALONE, alone_first, similarities
from agents.nodes.rerank import _similarities
from agents.nodes.retrieve import passage_from_hit
from agents.nodes.verify import _cite
from agents.settings import load_settings
from retrieval.config import ChunkingConfig, IndexConfig
from retrieval.embeddings import OnnxEmbedder
from retrieval.index import Index, SentenceVector
from retrieval.models import Document
from tests.agents.nodes.test_answer_late_vectors import WEIGHS, _context

QUESTION = "How tall is it and what is its weight in kilograms?"


def _stored_units(home: Path, embedder: OnnxEmbedder, mode: str) -> tuple[list[SentenceVector], RunContext]:
    ctx, index = _context(home, embedder, mode)
    (chunk,) = index.chunks_of("stone")
    return index.sentences_of([chunk])[chunk.chunk_id], ctx


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_rerank_reads_every_candidate_sentence_alone_over_late_vectors_once_per_text(
    tmp_path: Path, embedder: OnnxEmbedder, mode: str
) -> None:
    """More candidates than the drill-down or verify would read alone: rerank reads each of them."""
    units, ctx = _stored_units(tmp_path, embedder, mode)
    candidates = [*units, *_casts(units)]
    assert len(candidates) > ALONE_READINGS
    question = embedder.embed_query(QUESTION)
    before = embedder.stats.texts
    found = _similarities({"c": candidates}, question, ctx)["c"]
    read = embedder.stats.texts - before
    stored = [float(u.vector @ question) for u in candidates]
    alone = [float(x) for x in embedder.embed_documents([u.reading for u in candidates]) @ question]
    assert ctx.pooled_sentence_vectors is (mode == "late")
    if mode == "late":
        assert read == len({u.reading for u in candidates})
        weighs = [u.text for u in candidates].index(WEIGHS)
        # Pooled, the answering sentence also reads the stele's other facts; alone it is closer.
        assert alone[weighs] > stored[weighs]
        assert found == pytest.approx(alone, abs=1e-5)
        again = embedder.stats.texts
        assert _similarities({"c": candidates}, question, ctx)["c"] == found
        assert embedder.stats.texts == again
    else:
        assert read == 0
        assert found == pytest.approx(stored, abs=1e-6)
        real = len(units)  # the casts copy the first unit's vector
        assert stored[:real] == pytest.approx(alone[:real], abs=1e-5)


def test_verify_reads_only_the_rarest_candidates_alone_once_per_question(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    units, ctx = _stored_units(tmp_path, embedder, "late")
    candidates = _casts(units)
    extra = len(candidates) - ALONE_READINGS
    question = embedder.embed_query(QUESTION)
    rarity = [float(n) for n in range(len(candidates))]
    before = embedder.stats.texts
    first = similarities(candidates, rarity, question, ctx)
    assert embedder.stats.texts - before == ALONE_READINGS
    assert similarities(candidates, rarity, question, ctx) == first
    assert embedder.stats.texts - before == ALONE_READINGS
    stored = [float(u.vector @ question) for u in candidates]
    assert first[:extra] == pytest.approx(stored[:extra], abs=1e-6)
    alone = embedder.embed_documents([u.reading for u in candidates[extra:]]) @ question
    assert first[extra:] == pytest.approx(list(np.maximum(stored[extra:], alone)), abs=1e-5)


def _casts(units: list[SentenceVector]) -> list[SentenceVector]:
    return [
        replace(
            units[0], sentence_id=f"s{n}", start=n, text=f"Cast number {n} of the stele weighs {n} kilograms."
        )
        for n in range(ALONE_READINGS + 4)
    ]


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_the_drill_ranks_units_read_alone_before_the_rest(
    tmp_path: Path, embedder: OnnxEmbedder, mode: str
) -> None:
    units, ctx = _stored_units(tmp_path, embedder, mode)
    candidates = _casts(units)
    question = embedder.embed_query(QUESTION)
    scores = [float(n) for n in range(len(candidates))]
    found = alone_first(candidates, scores, question, ctx)
    stored = [float(u.vector @ question) for u in candidates]
    if mode == "separate":
        assert found == pytest.approx(stored, abs=1e-6)
        return
    alone = embedder.embed_documents([u.reading for u in candidates]) @ question
    read = [i for i, f in enumerate(found) if f > -1.0]
    # Half by score (the last ones), half by pooled similarity (all the casts share one pooled vector).
    assert set(range(len(candidates) - ALONE_READINGS // 2, len(candidates))) <= set(read)
    assert len(read) <= ALONE_READINGS
    # Those read alone count by the mean of their readings alone and in their chunk.
    assert [found[i] for i in read] == pytest.approx(
        [(float(alone[i]) + stored[i]) / 2 for i in read], abs=1e-5
    )
    rest = [i for i in range(len(candidates)) if i not in read]
    assert rest and [found[i] for i in rest] == pytest.approx([stored[i] - BELOW_READ_ALONE for i in rest])


def test_the_drill_down_reads_its_documents_likeliest_units_alone(
    tmp_path: Path, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ctx = _stored_units(tmp_path, embedder, "late")
    asked: list[int] = []

    def recording(units: list[SentenceVector], *args: object) -> list[float]:
        asked.append(len(units))
        return alone_first(units, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_drill, "alone_first", recording)
    found = _drill.best_unit(QUESTION, "stone", ctx)
    assert found is not None and found.unit.text == WEIGHS
    assert len(asked) == 1 and asked[0] == len(found.ranking)


def test_verify_reads_the_quoted_sentence_alone_however_far_down_its_passage(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    """A passage of more sentences than are read alone: the one the claim quotes holds its words, so it is
    read alone and supports the claim fully, as over separate vectors."""
    facts = [f"Pier {n} is {n + 3} metres deep." for n in range(ALONE_READINGS + 4)]
    claim = "The lighthouse keeper retired in 1911 after forty years of service."
    text = " ".join([*facts, claim])
    index = Index(
        IndexConfig(
            home=tmp_path,
            sentence_vectors="late",
            chunking=ChunkingConfig(chunk_tokens=1000, overlap_tokens=0),
        ),
        embedder=embedder,
    )
    index.ingest_documents([Document(doc_id="harbour", title="Harbour survey", text=text, source="test")])
    settings = load_settings({"home": str(tmp_path), "index": {"sentence_vectors": "late"}}, environ={})
    ctx = RunContext(
        settings=settings, index=index, llm=None, ledger=UsageLedger(), budget=CallBudget(limit=1)
    )
    (chunk,) = index.chunks_of("harbour")
    units = index.sentences_of([chunk])[chunk.chunk_id]
    assert len(units) > ALONE_READINGS
    # Inside the model's window, or its sentences would have been embedded alone at ingest.
    assert embedder.count_tokens([chunk.text])[0] < 256
    citation = _cite(
        claim,
        embedder.embed_query(claim),
        number=1,
        passage=passage_from_hit(chunk, 1.0),
        units=units,
        ctx=ctx,
    )
    assert citation["quote"] == claim
    assert citation["support"] == pytest.approx(1.0, abs=1e-3)
    assert citation["verdict"] == "supported"
