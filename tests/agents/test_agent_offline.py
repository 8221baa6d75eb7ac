"""The agent end to end without an LLM: the compiled graph over a real index, ONNX model and SQLite."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.agent import OFFLINE_NOTICE, Agent, Answer, ResetEvent, StepEvent, TokenEvent
from agents.nodes.answer import NO_ANSWER
from agents.settings import load_settings
from agents.steps import TRACED_STEPS as STEPS
from retrieval.embeddings import Embedder
from retrieval.index import Index

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


@dataclass(frozen=True)
class Case:
    """A question over the fixture corpus, the document that answers it and a phrase of that answer."""

    question: str
    doc_id: str
    phrase: str


LIGHTHOUSE = Case(
    "Which was the last lighthouse in Britain to be automated?", "lighthouses.md", "North Foreland lighthouse"
)
TEA = Case(
    "Who was sent to China by the East India Company in 1848 to collect tea plants?",
    "tea.html",
    "Robert Fortune",
)
CASES = [pytest.param(LIGHTHOUSE, id="lighthouse"), pytest.param(TEA, id="tea")]
ABSENT = [
    "What is the airspeed of an unladen swallow carrying a coconut?",
    "Who won the 1966 football World Cup final?",
]


def ingested_index(home: Path, embedder: Embedder) -> Index:
    """A real index of the fixture corpus at ``home``."""
    index = Index(load_settings({"home": str(home)}).index, embedder=embedder)
    report = index.ingest([FIXTURES], base=FIXTURES)
    assert not report.failed, report.failed
    return index


def assert_grounded(answer: Answer, index: Index) -> None:
    """Every citation names a retrieved passage by its number and quotes its document exactly."""
    retrieved = {p["chunk_id"] for p in answer.retrieved}
    for citation in answer.citations:
        assert citation["chunk_id"] in retrieved, citation
        assert 1 <= citation["number"] <= len(answer.passages), citation
        assert answer.passages[citation["number"] - 1]["chunk_id"] == citation["chunk_id"], citation
        text = index.document(citation["doc_id"]).text
        assert text[citation["start"] : citation["end"]] == citation["quote"], citation
        assert citation["quote"].strip(), citation
    cited = {n for s in answer.sentences for n in s["citations"]}
    assert cited == {c["number"] for c in answer.citations}


def assert_six_timed_steps(answer: Answer) -> None:
    """The trace holds each of the six steps, in graph order, each with its time."""
    steps = [entry["step"] for entry in answer.trace]
    assert steps[: len(STEPS)] == list(STEPS)
    assert set(steps) == set(STEPS)
    for entry in answer.trace:
        assert isinstance(entry["seconds"], float) and entry["seconds"] >= 0, entry
    assert sum(entry["seconds"] for entry in answer.trace) > 0


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Index:
    return ingested_index(tmp_path_factory.mktemp("offline-index"), embedder)


@pytest.fixture(scope="module")
def agent(index: Index, tmp_path_factory: pytest.TempPathFactory) -> Agent:
    return Agent(load_settings({"home": str(tmp_path_factory.mktemp("offline-home"))}), index=index)


@pytest.fixture(scope="module")
def answers(agent: Agent) -> dict[Case, Answer]:
    return {case: agent.ask(case.question) for case in (LIGHTHOUSE, TEA)}


@pytest.mark.parametrize("case", CASES)
def test_routing_keeps_the_gold_document(answers, case):
    kept = [doc["doc_id"] for doc in answers[case].routed if doc["kept"]]
    assert case.doc_id in kept


@pytest.mark.parametrize("case", CASES)
def test_answer_quotes_the_gold_document_with_exact_citations(answers, index, case):
    answer = answers[case]
    assert case.phrase in answer.text
    assert not answer.insufficient
    assert case.doc_id in {c["doc_id"] for c in answer.citations}
    assert_grounded(answer, index)
    assert all(s["verdict"] == "supported" for s in answer.sentences if case.phrase in s["text"])


@pytest.mark.parametrize("case", CASES)
def test_trace_has_six_timed_steps_and_says_offline(answers, case):
    answer = answers[case]
    assert_six_timed_steps(answer)
    assert len(answer.trace) == len(STEPS)
    assert answer.mode == "offline"
    assert OFFLINE_NOTICE in answer.notices
    assert all(entry["llm_calls"] == 0 and not entry["skipped"] for entry in answer.trace)


@pytest.mark.parametrize(
    "stage",
    ["expand", "route", "rerank", "verify"],
)
def test_a_stage_switched_off_is_skipped_and_the_answer_still_comes(index, tmp_path, stage):
    agent = Agent(load_settings({"home": str(tmp_path), stage: {"enabled": False}}), index=index)
    answer = agent.ask(LIGHTHOUSE.question)
    assert LIGHTHOUSE.phrase in answer.text
    assert_grounded(answer, index)
    assert_six_timed_steps(answer)
    skipped = {entry["step"] for entry in answer.trace if entry["skipped"]}
    assert skipped == {stage}


@pytest.mark.parametrize("question", ABSENT)
def test_a_question_the_documents_do_not_answer_gets_no_answer(agent, question):
    answer = agent.ask(question)
    assert answer.text == NO_ANSWER
    assert answer.insufficient
    assert answer.citations == []
    assert not any(s["verdict"] == "supported" for s in answer.sentences)


def test_a_follow_up_in_a_thread_keeps_the_history_and_finds_the_same_document(agent, index):
    first = agent.ask("Who was sent to China to collect tea plants?")
    follow_up = agent.ask("When did that happen?", thread_id=first.thread_id)
    assert follow_up.thread_id == first.thread_id
    history = agent.history(first.thread_id)
    assert [turn["question"] for turn in history] == [first.question, follow_up.question]
    assert [turn["answer"] for turn in history] == [first.text, follow_up.text]
    assert any(v["kind"] == "standalone" for v in follow_up.variants)
    assert "tea.html" in {c["doc_id"] for c in follow_up.citations}
    assert "1848" in follow_up.text
    assert_grounded(follow_up, index)
    assert first.thread_id in agent.threads()


def test_stream_yields_every_step_then_tokens_then_the_answer(agent):
    events = list(agent.stream(LIGHTHOUSE.question))
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert not any(isinstance(e, Answer) for e in events[:-1])
    steps = [e.step for e in events if isinstance(e, StepEvent)]
    assert steps == list(STEPS)
    assert [e.entry for e in events if isinstance(e, StepEvent)] == answer.trace
    tokens = [i for i, e in enumerate(events) if isinstance(e, TokenEvent)]
    answer_step = next(i for i, e in enumerate(events) if isinstance(e, StepEvent) and e.step == "answer")
    assert tokens and max(tokens) < answer_step
    assert "".join(events[i].text for i in tokens) == answer.text
    assert not any(isinstance(e, ResetEvent) for e in events)


def test_answer_json_round_trips(answers):
    answer = answers[LIGHTHOUSE]
    data = json.loads(answer.to_json())
    assert data == answer.to_dict()
    assert data["text"] == answer.text
    assert [c["quote"] for c in data["citations"]] == [c["quote"] for c in answer.citations]
    assert [t["step"] for t in data["trace"]] == list(STEPS)
