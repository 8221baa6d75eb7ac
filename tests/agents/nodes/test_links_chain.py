"""Evidence as a chain: retrieve follows the titles a passage names, rerank puts the named document first
and its links behind it, and the offline answer quotes only the best passage unless told otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.runtime import Runtime

from agents.context import CallBudget, RunContext
from agents.llm import UsageLedger
from agents.nodes.answer import answer_question
from agents.nodes.rerank import _as_chain, rerank_passages
from agents.nodes.retrieve import passage_from_hit, retrieve_chunks
from agents.settings import load_settings
from agents.state import AgentState, Passage, QueryVariant, RoutedDoc
from retrieval.config import IndexConfig
from retrieval.index import Index
from retrieval.models import Document

QUESTION = "Which heritage does the lead of Black Book have?"
CORPUS = {
    "film.txt": (
        "Black Book (film)",
        "Black Book is a 2006 thriller film directed by Paul Verhoeven. It stars Halina Reijn as Ronnie.",
    ),
    "reijn.txt": ("Halina Reijn", "Halina Reijn is a Dutch actress and writer. She was born in 1975."),
    "paper.txt": ("Paper", "Black paper and book covers were printed in 2006 for the film festival."),
    "tulips.txt": ("Tulip fields", "Tulips bloom in April. Growers export the bulbs to many countries."),
}


@pytest.fixture(scope="module")
def index(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Index:
    built = Index(IndexConfig.model_validate({"home": tmp_path_factory.mktemp("index")}), embedder=embedder)
    built.ingest_documents(
        [Document(doc_id=d, title=title, text=text, source=d) for d, (title, text) in CORPUS.items()]
    )
    return built


def runtime_for(index: Index, **overrides: Any) -> Runtime[RunContext]:
    ctx = RunContext(
        settings=load_settings(overrides),
        index=index,
        llm=None,
        ledger=UsageLedger(),
        budget=CallBudget(limit=10),
    )
    return Runtime(context=ctx)


def routed_to(*doc_ids: str) -> list[RoutedDoc]:
    return [RoutedDoc(doc_id=d, title=d, score=1.0, kept=True, signals={}) for d in doc_ids]


def retrieve_within(index: Index, doc_ids: tuple[str, ...], **overrides: Any) -> dict[str, Any]:
    state = AgentState(
        question=QUESTION,
        variants=[QueryVariant(text=QUESTION, kind="original")],
        routed=routed_to(*doc_ids),
    )
    return retrieve_chunks(state, runtime_for(index, **overrides))


def passage(index: Index, doc_id: str) -> Passage:
    (hit,) = index.dense_chunks(index.embedder.embed_query(QUESTION), 1, doc_ids=[doc_id])
    return passage_from_hit(hit, hit.score)


def test_a_document_named_by_a_retrieved_passage_joins_the_candidates(index: Index) -> None:
    found = retrieve_within(index, ("film.txt",))
    docs = [p["doc_id"] for p in found["retrieved"]]
    assert docs[0] == "film.txt" and "reijn.txt" in docs
    (linked,) = [
        entry for entry in found["trace"][0]["outputs"]["linked"] if entry["chunk_id"].startswith("reijn")
    ]
    assert linked["named_by"] == found["retrieved"][0]["chunk_id"]


def test_a_document_the_question_names_joins_the_candidates(index: Index) -> None:
    found = retrieve_within(index, ("tulips.txt",))
    by = {e["chunk_id"].split("#")[0]: e["named_by"] for e in found["trace"][0]["outputs"]["linked"]}
    assert by["film.txt"] == "question"


def test_following_links_can_be_switched_off(index: Index) -> None:
    found = retrieve_within(index, ("film.txt",), retrieve={"linked_docs": 0})
    assert {p["doc_id"] for p in found["retrieved"]} == {"film.txt"}
    assert found["trace"][0]["outputs"]["linked"] == []


def test_rerank_puts_the_named_document_first_and_what_it_names_next(index: Index) -> None:
    candidates = [passage(index, d) for d in ("paper.txt", "film.txt", "tulips.txt", "reijn.txt")]
    state = AgentState(question=QUESTION, retrieved=candidates)
    ranked = rerank_passages(state, runtime_for(index))["ranked"]
    assert [p["doc_id"] for p in ranked[:2]] == ["film.txt", "reijn.txt"]
    unchained = rerank_passages(state, runtime_for(index, rerank={"chain": False}))["ranked"]
    assert [p["doc_id"] for p in unchained[:2]] != ["film.txt", "reijn.txt"]


def test_of_the_best_two_a_passage_from_a_document_the_question_names_goes_first(index: Index) -> None:
    ctx = runtime_for(index).context
    second = [passage(index, d) for d in ("paper.txt", "film.txt", "tulips.txt")]
    assert [p["doc_id"] for p in _as_chain(QUESTION, second, ctx)] == ["film.txt", "paper.txt", "tulips.txt"]
    third = [passage(index, d) for d in ("paper.txt", "tulips.txt", "film.txt")]
    assert [p["doc_id"] for p in _as_chain(QUESTION, third, ctx)] == ["paper.txt", "tulips.txt", "film.txt"]


def cited_numbers(index: Index, question: str, ranked: list[Passage], **overrides: Any) -> set[int]:
    state = AgentState(question=question, ranked=ranked, retrieved=ranked, attempts=0)
    sentences = answer_question(state, runtime_for(index, **overrides))["sentences"]
    return {n for s in sentences for n in s["citations"]}


def test_the_offline_answer_quotes_only_the_best_passage_unless_told_to_quote_more(index: Index) -> None:
    ranked = [passage(index, "film.txt"), passage(index, "reijn.txt")]
    question = "Is Halina Reijn, who stars in Black Book, a Dutch actress and writer?"
    assert cited_numbers(index, question, ranked) == {1}
    assert 2 in cited_numbers(index, question, ranked, answer={"quote_passages": 2, "max_sentences": 4})
