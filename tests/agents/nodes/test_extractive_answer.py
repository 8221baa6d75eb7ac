"""The offline answer reads each sentence with its document's title, so a sentence that never names its
subject can still be the one quoted."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.runtime import Runtime

from agents.context import CallBudget, RunContext
from agents.llm import UsageLedger
from agents.nodes.answer import answer_question
from agents.nodes.retrieve import passage_from_hit
from agents.settings import load_settings
from agents.state import AgentState
from retrieval.config import IndexConfig
from retrieval.index import Index
from retrieval.models import Document

STONE = Document(
    doc_id="stone.txt",
    title="The Rosetta Stone",
    source="stone.txt",
    text=(
        "The Rosetta Stone is a granodiorite stele that was found near the town of Rashid in 1799. "
        "It weighs roughly 760 kilograms. "
        "The Rosetta Stone has been on public display at the British Museum since 1802."
    ),
)


@pytest.fixture(scope="module")
def index(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Index:
    built = Index(IndexConfig.model_validate({"home": tmp_path_factory.mktemp("index")}), embedder=embedder)
    built.ingest_documents([STONE])
    return built


def test_a_sentence_that_does_not_name_its_subject_is_quoted_when_it_answers(index: Index) -> None:
    question = "How much does the Rosetta Stone weigh?"
    (hit,) = index.dense_chunks(index.embedder.embed_query(question), 1)
    ranked = [passage_from_hit(hit, hit.score)]
    ctx = RunContext(
        settings=load_settings({}), index=index, llm=None, ledger=UsageLedger(), budget=CallBudget(limit=1)
    )
    state = AgentState(question=question, ranked=ranked, retrieved=ranked, attempts=0)
    answered = answer_question(state, Runtime(context=ctx))
    assert answered["sentences"][0]["text"] == "It weighs roughly 760 kilograms. [1]"
