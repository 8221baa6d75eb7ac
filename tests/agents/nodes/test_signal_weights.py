"""Retrieve fuses BM25 and dense lists with the corpus's signal weights, or equal ones when switched off."""

from __future__ import annotations

from typing import Any

import pytest

from agents.nodes.retrieve import retrieve_chunks
from agents.state import AgentState, QueryVariant
from retrieval.calibration import SignalWeights
from retrieval.index import Index
from tests.agents.nodes.test_links_chain import runtime_for
from tests.retrieval.test_calibration import _config, _report

QUESTION = "What did the inspection of N4037Q find about its fuel selector?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Index:
    built = Index(_config(tmp_path_factory.mktemp("weights")), embedder=embedder)
    built.ingest_documents([_report(n) for n in range(10)])
    return built


def _retrieve(index: Index, **overrides: Any) -> dict[str, Any]:
    state = AgentState(question=QUESTION, variants=[QueryVariant(text=QUESTION, kind="original")])
    return retrieve_chunks(state, runtime_for(index, **overrides))


def test_retrieve_uses_and_records_the_corpus_weights(index: Index) -> None:
    measured = index.signal_weights()
    assert measured.dense < 1.0
    weights = _retrieve(index)["trace"][0]["outputs"]["weights"]
    assert weights == {"bm25": measured.bm25, "dense": measured.dense}


def test_switched_off_weights_are_equal(index: Index) -> None:
    weights = _retrieve(index, retrieve={"signal_weights": False})["trace"][0]["outputs"]["weights"]
    equal = SignalWeights()
    assert weights == {"bm25": equal.bm25, "dense": equal.dense} == {"bm25": 1.0, "dense": 1.0}
