"""The answer and verify nodes against a real index, offline and with a scripted in-process model."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, cast

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agents.context import CallBudget, RunContext, RunLimits
from agents.errors import LLMError, LLMOutputError, StageDegradedError
from agents.llm import UsageLedger
from agents.nodes._text import drop_citations, split_answer
from agents.nodes.answer import NO_ANSWER, answer_question
from agents.nodes.retrieve import passage_from_hit
from agents.nodes.verify import combine_verdicts, route_after_verify, verify_answer
from agents.settings import load_settings
from agents.state import AgentState, Passage
from prompts import render
from retrieval.config import IndexConfig
from retrieval.index import Index
from retrieval.models import Document

BEES = Document(
    doc_id="bees.md",
    title="Honeybee colonies",
    source="bees.md",
    text=(
        "A honeybee colony has one queen, thousands of female workers and, in summer, "
        "a few hundred male drones. "
        "The queen lays up to two thousand eggs a day during the spring build-up. "
        "Worker bees tell their sisters where flowers are by performing a waggle dance on the comb. "
        "The angle of the waggle run shows the direction of the food relative to the sun. "
        "In winter the bees form a tight cluster and shiver their flight muscles to keep the queen warm."
    ),
)
STONE = Document(
    doc_id="stone.txt",
    title="The Rosetta Stone",
    source="stone.txt",
    text=(
        "The Rosetta Stone is a granodiorite stele inscribed with a decree issued in Memphis in 196 BC. "
        "The decree appears in three scripts: Egyptian hieroglyphs, Demotic script and Ancient Greek. "
        "Jean-Francois Champollion announced his decipherment of the hieroglyphs in 1822."
    ),
)
BEES_QUESTION = "How do worker bees tell each other where flowers are?"
CHEESE = "The moon is made of cheese [1]."
Messages = list[dict[str, str]]
Reply = TypeVar("Reply", bound=BaseModel)


class ScriptedModel:
    """An in-process chat model: replies come from queues, every call is recorded."""

    def __init__(self, *, answers: Sequence[Any] = (), judgements: Sequence[Any] = ()) -> None:
        self.answers = list(answers)
        self.judgements = list(judgements)
        self.calls: list[tuple[str, Messages]] = []
        self.ledger = UsageLedger()

    def within(self, limits: RunLimits) -> ScriptedModel:
        return self

    def text(self, messages: Messages, *, stage: str, max_tokens: int | None = None) -> str:
        return "".join(self.stream(messages, stage=stage, max_tokens=max_tokens))

    def stream(self, messages: Messages, *, stage: str, max_tokens: int | None = None) -> Iterator[str]:
        self.calls.append((stage, messages))
        reply = self.answers.pop(0)
        yield from re.findall(r"\S+\s*", reply if isinstance(reply, str) else "Worker bees dance ")
        if isinstance(reply, Exception):
            raise reply

    def structured(
        self, messages: Messages, schema: type[Reply], *, stage: str, max_tokens: int | None = None
    ) -> Reply:
        self.calls.append((stage, messages))
        reply = self.judgements.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return schema.model_validate(reply)


@pytest.fixture(scope="module")
def index(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Index:
    built = Index(IndexConfig.model_validate({"home": tmp_path_factory.mktemp("index")}), embedder=embedder)
    built.ingest_documents([BEES, STONE])
    return built


def passages_for(index: Index, question: str, k: int = 4) -> list[Passage]:
    hits = index.dense_chunks(index.embedder.embed_query(question), k)
    return [passage_from_hit(h, h.score) for h in hits]


def passage_of(index: Index, doc_id: str) -> Passage:
    hit = next(h for h in index.dense_chunks(index.embedder.embed_query(doc_id), 10) if h.doc_id == doc_id)
    return passage_from_hit(hit, hit.score)


def runtime_for(
    index: Index, *, llm: ScriptedModel | None = None, strict: bool = False
) -> tuple[Runtime[RunContext], list[Any]]:
    events: list[dict[str, Any]] = []
    ctx = RunContext(
        settings=load_settings({"strict": strict}),
        index=index,
        llm=llm,
        ledger=UsageLedger(),
        budget=CallBudget(limit=10),
    )
    return Runtime(context=ctx, stream_writer=events.append), events


def server_error() -> LLMError:
    return LLMError("answer: server error HTTP 500", stage="answer", attempts=4, status=500, retryable=True)


def merged(state: AgentState, *updates: dict[str, Any]) -> AgentState:
    return cast(AgentState, {key: value for part in (state, *updates) for key, value in part.items()})


def tokens(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "token")


def sentence_state(index: Index, texts: list[str], *, attempts: int = 1) -> AgentState:
    ranked = [passage_of(index, "bees.md"), passage_of(index, "stone.txt")]
    sentences = [s for text in texts for s in split_answer(text)]
    return AgentState(
        question=BEES_QUESTION,
        ranked=ranked,
        retrieved=ranked,
        sentences=sentences,
        answer_text=" ".join(texts),
        attempts=attempts,
        insufficient=False,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bees dance [1]. They sting [2][3].", [("Bees dance [1].", [1]), ("They sting [2][3].", [2, 3])]),
        ("Bees dance. [1] Wax is made [1, 2].", [("Bees dance. [1]", [1]), ("Wax is made [1, 2].", [1, 2])]),
        ("- Bees dance [1]\n- Wax [2,3]", [("- Bees dance [1]", [1]), ("- Wax [2,3]", [2, 3])]),
        ("Honey is sweet.", [("Honey is sweet.", [])]),
    ],
)
def test_split_answer_keeps_each_sentences_citations(text: str, expected: list[Any]) -> None:
    assert [(s["text"], s["citations"]) for s in split_answer(text)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bees dance [9].", "Bees dance."),
        ("Bees dance [1, 9] and sting [9][2].", "Bees dance [1] and sting [2]."),
        ("Bees dance [1,2].", "Bees dance [1,2]."),
    ],
)
def test_drop_citations_removes_only_rejected_numbers(text: str, expected: str) -> None:
    assert drop_citations(text, keep=lambda n: n != 9) == expected


@pytest.mark.parametrize(
    ("score", "llm", "expected"),
    [
        ("partial", "unsupported", "unsupported"),
        ("partial", "supported", "supported"),
        ("supported", "unsupported", "supported"),
        ("unsupported", "supported", "unsupported"),
        ("unsupported", "partial", "unsupported"),
        ("supported", "supported", "supported"),
    ],
)
def test_llm_verdict_wins_only_when_decisive_and_close(score: Any, llm: Any, expected: str) -> None:
    assert combine_verdicts(score, llm) == expected


def test_answer_prompt_states_the_no_answer_sentence() -> None:
    messages = render("answer", question="q", sources="[1] (t)\nx", feedback="none")
    assert NO_ANSWER in messages[0]["content"]


def test_offline_answer_quotes_cited_passages_and_verify_confirms(index: Index) -> None:
    runtime, events = runtime_for(index)
    ranked = passages_for(index, BEES_QUESTION)
    state = AgentState(question=BEES_QUESTION, ranked=ranked, retrieved=ranked, attempts=0)
    answered = answer_question(state, runtime)

    assert not answered["insufficient"] and answered["attempts"] == 1
    assert "waggle dance" in answered["answer_text"]
    assert tokens(events) == answered["answer_text"]
    for sentence in answered["sentences"]:
        (number,) = sentence["citations"]
        quoted = sentence["text"].removesuffix(f" [{number}]")
        assert quoted in ranked[number - 1]["text"]

    verified = verify_answer(merged(state, answered), runtime)
    assert verified["citations"] and verified["feedback"] == ""
    assert all(s["verdict"] == "supported" for s in verified["sentences"])
    for citation in verified["citations"]:
        document = index.document(citation["doc_id"])
        assert document.text[citation["start"] : citation["end"]] == citation["quote"]
        assert citation["chunk_id"] == ranked[citation["number"] - 1]["chunk_id"]
    assert route_after_verify(merged(state, answered, verified)) == "end"


def test_offline_answer_without_evidence_says_so(index: Index) -> None:
    runtime, events = runtime_for(index)
    question = "Who won the 1998 football World Cup?"
    ranked = passages_for(index, question)
    state = AgentState(question=question, ranked=ranked, retrieved=ranked, attempts=0)
    answered = answer_question(state, runtime)

    assert answered["insufficient"] and answered["answer_text"] == NO_ANSWER
    assert answered["sentences"] == [] and tokens(events) == NO_ANSWER
    verified = verify_answer(merged(state, answered), runtime)
    assert verified["citations"] == [] and verified["feedback"] == ""


def test_verify_removes_citations_out_of_range_or_not_retrieved(index: Index) -> None:
    runtime, _ = runtime_for(index)
    state = sentence_state(
        index,
        [
            "Worker bees tell their sisters where flowers are by performing a waggle dance [1][9].",
            "The decree appears in three scripts [2].",
        ],
    )
    state["retrieved"] = state["ranked"][:1]
    verified = verify_answer(state, runtime)

    removed = verified["trace"][0]["outputs"]["removed"]
    assert [(r["sentence"], r["number"]) for r in removed] == [(0, 9), (1, 2)]
    assert "out of range" in removed[0]["why"] and "not among the retrieved" in removed[1]["why"]
    assert [s["citations"] for s in verified["sentences"]] == [[1], []]
    assert [s["verdict"] for s in verified["sentences"]] == ["supported", "unsupported"]
    assert [c["number"] for c in verified["citations"]] == [1]
    assert "[9]" not in verified["answer_text"] and "[2]" not in verified["answer_text"]
    assert verified["answer_text"].endswith("three scripts.")


def test_unsupported_sentence_is_flagged_and_offline_gets_no_retry(index: Index) -> None:
    runtime, _ = runtime_for(index)
    verified = verify_answer(sentence_state(index, [CHEESE]), runtime)

    (sentence,) = verified["sentences"]
    assert sentence["verdict"] == "unsupported" and sentence["support"] < 0.4
    assert verified["feedback"] == ""


@pytest.mark.parametrize(("attempts", "retry"), [(1, True), (2, False)])
def test_llm_unsupported_sentence_goes_back_once(index: Index, attempts: int, retry: bool) -> None:
    judgement = {"index": 0, "verdict": "unsupported", "reason": "no moon"}
    model = ScriptedModel(judgements=[{"judgements": [judgement]}])
    runtime, _ = runtime_for(index, llm=model)
    state = sentence_state(index, [CHEESE], attempts=attempts)
    verified = verify_answer(state, runtime)

    assert verified["sentences"][0]["verdict"] == "unsupported"
    assert bool(verified["feedback"]) is retry
    assert route_after_verify(merged(state, verified)) == ("answer" if retry else "end")
    if retry:
        assert "The moon is made of cheese" in verified["feedback"]
    (opinion,) = verified["trace"][0]["outputs"]["judge"]
    assert opinion["llm_verdict"] == "unsupported" and opinion["score_verdict"] == "unsupported"
    assert [stage for stage, _ in model.calls] == ["verify"]


def test_llm_answer_streams_tokens_and_reads_feedback(index: Index) -> None:
    reply = "Worker bees dance to show where flowers are [1]. The decree has three scripts [2, 1]."
    model = ScriptedModel(answers=[reply])
    runtime, events = runtime_for(index, llm=model)
    state = merged(sentence_state(index, []), {"feedback": "- The moon is made of cheese.", "attempts": 1})
    answered = answer_question(state, runtime)

    assert answered["answer_text"] == reply and answered["attempts"] == 2
    assert tokens(events) == reply and len([e for e in events if e["type"] == "token"]) > 2
    assert events[0]["type"] == "reset"
    assert [s["citations"] for s in answered["sentences"]] == [[1], [2, 1]]
    ((stage, messages),) = model.calls
    prompt = messages[-1]["content"]
    assert stage == "answer" and "[1] (Honeybee colonies)" in prompt and "[2] (The Rosetta Stone)" in prompt
    assert "The moon is made of cheese" in prompt and BEES_QUESTION in prompt


def test_llm_saying_no_answer_marks_the_answer_insufficient(index: Index) -> None:
    runtime, _ = runtime_for(index, llm=ScriptedModel(answers=[NO_ANSWER]))
    answered = answer_question(sentence_state(index, [], attempts=0), runtime)
    assert answered["insufficient"] and answered["sentences"] == [] and answered["answer_text"] == NO_ANSWER


@pytest.mark.parametrize(
    "failure",
    [
        server_error(),
        "",
    ],
)
def test_llm_answer_failure_falls_back_to_quotes(index: Index, failure: Any) -> None:
    runtime, events = runtime_for(index, llm=ScriptedModel(answers=[failure]))
    ranked = passages_for(index, BEES_QUESTION)
    answered = answer_question(AgentState(question=BEES_QUESTION, ranked=ranked, retrieved=ranked), runtime)

    assert answered["trace"][0]["degraded"] and answered["trace"][0]["outputs"]["mode"] == "extractive"
    assert "waggle dance on the comb. [1]" in answered["answer_text"]
    reset = next(i for i, e in enumerate(events) if e["type"] == "reset")
    assert "".join(e["text"] for e in events[reset + 1 :] if e["type"] == "token") == answered["answer_text"]


def test_llm_answer_failure_raises_in_strict_mode(index: Index) -> None:
    runtime, _ = runtime_for(index, llm=ScriptedModel(answers=[server_error()]), strict=True)
    ranked = passages_for(index, BEES_QUESTION)
    with pytest.raises(StageDegradedError, match="HTTP 500") as caught:
        answer_question(AgentState(question=BEES_QUESTION, ranked=ranked, retrieved=ranked), runtime)
    assert isinstance(caught.value.__cause__, LLMError)


def test_judge_failure_keeps_the_score_verdicts(index: Index) -> None:
    failure = LLMOutputError("verify: not valid Judgements", stage="verify", raw_text="{")
    runtime, _ = runtime_for(index, llm=ScriptedModel(judgements=[failure]))
    text = "Worker bees tell their sisters where flowers are by performing a waggle dance on the comb [1]."
    verified = verify_answer(sentence_state(index, [text, CHEESE]), runtime)

    assert [s["verdict"] for s in verified["sentences"]] == ["supported", "unsupported"]
    assert "entailment check failed" in verified["trace"][0]["degraded"][0]
    assert verified["feedback"]


def test_passages_without_stored_sentences_are_quoted_whole(embedder: Any, tmp_path: Any) -> None:
    config = IndexConfig.model_validate({"home": tmp_path / "bare", "embed_sentences": False})
    bare = Index(config, embedder=embedder)
    bare.ingest_documents([STONE])
    runtime, _ = runtime_for(bare)
    passage = passage_of(bare, "stone.txt")
    state = AgentState(
        question="q",
        ranked=[passage],
        retrieved=[passage],
        sentences=split_answer("Champollion deciphered the hieroglyphs in 1822 [1]."),
        answer_text="Champollion deciphered the hieroglyphs in 1822 [1].",
        attempts=1,
    )
    (citation,) = verify_answer(state, runtime)["citations"]

    assert (citation["start"], citation["end"]) == (passage["start"], passage["end"])
    assert bare.document("stone.txt").text[citation["start"] : citation["end"]] == citation["quote"]
    assert citation["verdict"] != "unsupported"


def test_tokens_reach_the_custom_stream_of_a_compiled_graph(index: Index) -> None:
    runtime, _ = runtime_for(index)
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("answer", answer_question)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    ranked = passages_for(index, BEES_QUESTION)
    chunks = list(
        graph.compile().stream(
            {"question": BEES_QUESTION, "ranked": ranked, "retrieved": ranked},
            context=runtime.context,
            stream_mode="custom",
        )
    )
    assert chunks and all(c["type"] == "token" for c in chunks)
    assert "waggle dance" in "".join(c["text"] for c in chunks)
