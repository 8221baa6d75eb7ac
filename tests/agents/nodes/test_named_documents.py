"""A question that names several documents, by title or by the identifier in their file names, gets each
one's best passage near the top of the reranked order (real Chroma, real ONNX model)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.nodes.rerank import NAMED_NEAR_TOP, _each_named_document_near_the_top
from agents.state import Passage
from retrieval.hits import passage_from_hit
from retrieval.index import Index
from retrieval.models import Document
from tests.agents.nodes.indexes import ingested_index
from tests.agents.nodes.test_links_chain import runtime_for

STAFF = "docs/NCT06152666_Prot_000.pdf"
PATIENTS = "docs/NCT06152679_Prot_000.pdf"
OTHER = "docs/NCT06159946_Prot_000.pdf"
TEXTS = {
    STAFF: "Interviews with staff last up to 45 minutes. Staff are recruited from twelve hospitals. "
    "The study runs for 18 months. Staff give consent online. Transcripts are anonymised.",
    PATIENTS: "Interviews with patients last up to 60 minutes. Patients are recruited after surgery.",
    OTHER: "A virtual reality programme for the upper limb is offered three times per week.",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Index:
    documents = [Document(doc_id=d, title="Study Protocol", text=text, source=d) for d, text in TEXTS.items()]
    return ingested_index(tmp_path_factory.mktemp("named"), embedder, documents, chunk_tokens=16)


def _order(index: Index) -> list[Passage]:
    assert len(index.chunks_of(STAFF)) >= NAMED_NEAR_TOP
    patients = index.chunks_of(PATIENTS)
    return [passage_from_hit(c, 1.0) for c in index.chunks_of(STAFF)] + [passage_from_hit(patients[0], 0.5)]


def test_the_second_named_document_moves_up_behind_the_first_passage(index: Index) -> None:
    order = _order(index)
    question = "Which study plans longer interviews, NCT06152666 or NCT06152679?"
    moved = _each_named_document_near_the_top(question, order, runtime_for(index).context)
    assert moved[0] == order[0]
    assert moved[1]["doc_id"] == PATIENTS
    assert sorted(p["chunk_id"] for p in moved) == sorted(p["chunk_id"] for p in order)


@pytest.mark.parametrize(
    "question", ["How long are staff interviews in NCT06152666?", "How long are the staff interviews?"]
)
def test_a_question_naming_one_document_or_none_keeps_the_order(index: Index, question: str) -> None:
    order = _order(index)
    assert _each_named_document_near_the_top(question, order, runtime_for(index).context) == order


def test_a_choice_between_two_things_brings_each_one_s_document_even_one_not_retrieved(index: Index) -> None:
    order = _order(index)
    assert all(p["doc_id"] != OTHER for p in order)
    question = "Which is offered more often: the staff interviews or the virtual reality programme?"
    moved = _each_named_document_near_the_top(question, order, runtime_for(index).context)
    assert moved[0] == order[0]
    assert [p["doc_id"] for p in moved[1:2]] == [OTHER]
    assert len(moved) == len(order) + 1
