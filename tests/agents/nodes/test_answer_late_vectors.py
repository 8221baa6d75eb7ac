"""The offline answer over late sentence vectors (``index.sentence_vectors: late``): a late vector was pooled
in its chunk's context, so the answer also reads each candidate sentence alone and under its title, embedded
at question time, as it does over separate vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.context import CallBudget, RunContext
from agents.llm import UsageLedger
from agents.nodes.answer import _candidates
from agents.nodes.retrieve import passage_from_hit
from agents.settings import load_settings
from retrieval.config import IndexConfig
from retrieval.embeddings import OnnxEmbedder
from retrieval.index import Index
from retrieval.models import Document

TITLE = "Rosetta Stone"
TEXT = (
    "The Rosetta Stone is a granodiorite stele found in 1799 near the town of Rashid. "
    "Napoleon's scholars shipped casts of it to Paris, where rival teams raced to read it. "
    "It weighs roughly 760 kilograms and stands over a metre tall. "
    "Its three scripts made the decipherment of hieroglyphs possible."
)
WEIGHS = "It weighs roughly 760 kilograms and stands over a metre tall."


def _context(home: Path, embedder: OnnxEmbedder, mode: str) -> tuple[RunContext, Index]:
    index = Index(IndexConfig(home=home, sentence_vectors=mode), embedder=embedder)
    index.ingest_documents([Document(doc_id="stone", title=TITLE, text=TEXT, source="test")])
    settings = load_settings({"home": str(home), "index": {"sentence_vectors": mode}}, environ={})
    ctx = RunContext(
        settings=settings, index=index, llm=None, ledger=UsageLedger(), budget=CallBudget(limit=1)
    )
    return ctx, index


def _meaning_and_readings(
    home: Path, embedder: OnnxEmbedder, mode: str, question: str
) -> tuple[float, dict[str, float]]:
    """The answer's meaning for WEIGHS, and the question's similarity to each of its readings."""
    ctx, index = _context(home, embedder, mode)
    asked = embedder.embed_query(question)
    (hit,) = index.dense_chunks(asked, 1)
    found = {c.unit.text: c for c in _candidates(question, [(1, passage_from_hit(hit, hit.score))], ctx=ctx)}
    weighs = found[WEIGHS]
    alone, titled = embedder.embed_documents([weighs.unit.reading, f"{TITLE}: {weighs.unit.reading}"])
    readings = {"stored": weighs.unit.vector, "alone": alone, "titled": titled}
    return weighs.meaning, {name: float(np.dot(vector, asked)) for name, vector in readings.items()}


@pytest.mark.parametrize(
    ("question", "best"),
    [
        ("What does the Rosetta Stone weigh?", "titled"),
        ("How tall is it and what is its weight in kilograms?", "alone"),
    ],
)
def test_a_late_candidate_is_read_alone_and_under_its_title_instead_of_pooled(
    tmp_path: Path, embedder: OnnxEmbedder, question: str, best: str
) -> None:
    """Pooled in its chunk's context, the late vector of "It weighs ..." takes in its neighbours: the
    question is closer to the sentence under its title, or to the sentence alone, and the answer weighs
    those two readings, as over separate vectors."""
    meaning, similarity = _meaning_and_readings(tmp_path, embedder, "late", question)
    assert similarity[best] > similarity["stored"] + 0.05
    assert meaning == pytest.approx(max(similarity["alone"], similarity["titled"]), abs=1e-5)


def test_a_separate_candidate_keeps_its_stored_and_titled_readings(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    meaning, similarity = _meaning_and_readings(
        tmp_path, embedder, "separate", "What does the Rosetta Stone weigh?"
    )
    assert meaning == pytest.approx(max(similarity["stored"], similarity["titled"]), abs=1e-5)


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_candidates_compare_as_read_alone(tmp_path: Path, embedder: OnnxEmbedder, mode: str) -> None:
    """Two neighbours pooled in one chunk read alike; the answer tells repeats apart by the units alone."""
    ctx, index = _context(tmp_path, embedder, mode)
    question = "What does the Rosetta Stone weigh and when was it found?"
    (hit,) = index.dense_chunks(embedder.embed_query(question), 1)
    found = _candidates(question, [(1, passage_from_hit(hit, hit.score))], ctx=ctx)
    assert len(found) >= 2
    alone = embedder.embed_documents([c.unit.reading for c in found])
    np.testing.assert_allclose(np.stack([c.vector for c in found]), alone, atol=1e-5)
    pooled = np.stack([c.unit.vector for c in found])
    if mode == "late":
        pairs = [(i, j) for i in range(len(found)) for j in range(i + 1, len(found))]
        assert all(pooled[i] @ pooled[j] > alone[i] @ alone[j] for i, j in pairs)
