"""The agent's LLM path end to end over real HTTP, against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import pytest

from agents.agent import Agent, Answer, ResetEvent, TokenEvent
from agents.llm import UsageLedger
from agents.nodes._text import normalised
from agents.settings import load_settings
from prompts import load_prompt, render
from prompts.phrases import FIRST_ATTEMPT
from retrieval.embeddings import Embedder
from retrieval.index import Index
from tests.agents.test_agent_offline import (
    LIGHTHOUSE,
    assert_grounded,
    assert_six_timed_steps,
    ingested_index,
)
from tests.openai_server import Reply, ScriptedOpenAI

PROMPTS = ("standalone", "rewrite", "query2doc", "rerank_listwise", "answer", "verify")
GOLD = "The North Foreland lighthouse in Kent became the last lighthouse in Britain to be automated in 1998"
NAPOLEON = "The lighthouse was painted purple by Napoleon [1]."
SOURCE = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
CLAIM = re.compile(r"^(\d+)\. (.*) \(cites ((?:\[\d+\])+)\)$", re.MULTILINE)


@cache
def _opening(prompt: str) -> str:
    """The first line of a prompt's system message, which tells the stage that sent a request."""
    blanks = dict.fromkeys(load_prompt(prompt).input_variables, "")
    return render(prompt, **blanks)[0]["content"].splitlines()[0]


def prompt_of(body: Mapping[str, Any]) -> str:
    """Which packaged prompt a chat request was rendered from."""
    system = body["messages"][0]["content"]
    return next((p for p in PROMPTS if system.startswith(_opening(p))), "unknown")


def user_text(body: Mapping[str, Any]) -> str:
    """The first user message of a request (the rendered template, not a re-ask)."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def source_number(text: str, phrase: str) -> int:
    """The number of the listed source or passage whose text contains ``phrase``."""
    position = text.index(phrase)
    return int(SOURCE.findall(text[:position])[-1])


Respond = Callable[[dict[str, Any]], Reply | str]
Scripted = Reply | str | Respond


@dataclass
class Responder:
    """Replies as a careful model would, per prompt, except where a test scripts a prompt's replies.

    ``scripted[prompt]`` replies are used in order for that prompt's first requests (HTTP retries and re-asks
    included), ``always[prompt]`` for every request; the rest get the careful default. A scripted reply may
    be a function of the request body.
    """

    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    always: dict[str, Scripted] = field(default_factory=dict)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Reply | str:
        prompt = prompt_of(body)
        with self._lock:
            seen = len(self.requests[prompt])
            self.requests[prompt].append(body)
        queue = self.scripted.get(prompt, [])
        chosen = queue[seen] if seen < len(queue) else self.always.get(prompt, DEFAULTS[prompt])
        return chosen(body) if callable(chosen) else chosen


def _standalone(body: dict[str, Any]) -> str:
    follow_up = user_text(body).rpartition("Follow-up question: ")[2].strip()
    return json.dumps({"question": follow_up})


def _rewrites(body: dict[str, Any]) -> str:
    question = user_text(body).removeprefix("Question: ").strip()
    return json.dumps({"rewrites": [question, f"{question} keepers automation", "last staffed lighthouse"]})


def _pseudo_doc(body: dict[str, Any]) -> str:
    return "Automatic lamps replaced the lighthouse keepers; the last British light was automated in 1998."


def _ranking(body: dict[str, Any]) -> str:
    text = user_text(body)
    numbers = [int(n) for n in SOURCE.findall(text)]
    first = [source_number(text, "North Foreland")] if "North Foreland" in text else []
    return json.dumps({"ranking": first + [n for n in numbers if n not in first]})


def _answer(body: dict[str, Any]) -> Reply:
    return Reply(content=f"{GOLD} [{source_number(user_text(body), GOLD)}].")


def _judgements(body: dict[str, Any], *, lenient: bool = False) -> str:
    sources = normalised(user_text(body).partition("Claims:")[0])
    judgements = []
    for index, claim, _ in CLAIM.findall(user_text(body)):
        stated = lenient or normalised(claim) in sources
        verdict = "supported" if stated else "unsupported"
        judgements.append({"index": int(index), "verdict": verdict, "reason": f"the sources: {verdict}"})
    return json.dumps({"judgements": judgements})


def _unknown(body: dict[str, Any]) -> Reply:
    return Reply(status=400, error="the scripted server does not know this prompt")


DEFAULTS: dict[str, Respond] = {
    "standalone": _standalone,
    "rewrite": _rewrites,
    "query2doc": _pseudo_doc,
    "rerank_listwise": _ranking,
    "answer": _answer,
    "verify": _judgements,
    "unknown": _unknown,
}


@dataclass
class Run:
    """One question asked over HTTP: the answer, the events streamed, the model's ledger and the requests."""

    answer: Answer
    events: list[Any]
    ledger: UsageLedger
    responder: Responder

    def entries(self, step: str) -> list[dict[str, Any]]:
        """The trace entries of ``step``, in order."""
        return [dict(entry) for entry in self.answer.trace if entry["step"] == step]

    def records(self, stage: str) -> list[Any]:
        """The ledger's records for ``stage``."""
        return [record for record in self.ledger.records if record.stage == stage]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Index:
    return ingested_index(tmp_path_factory.mktemp("llm-index"), embedder)


@pytest.fixture
def ask(index, tmp_path):
    def run(responder: Responder, *, question: str = LIGHTHOUSE.question, **overrides: Any) -> Run:
        with ScriptedOpenAI(responder) as server:
            llm = {"base_url": server.base_url, "model": "m", "backoff_s": 0.01, "timeout_s": 5}
            settings = {"home": str(tmp_path), **overrides, "llm": {**llm, **overrides.get("llm", {})}}
            agent = Agent(load_settings(settings), index=index)
            events = list(agent.stream(question))
        answer = events[-1]
        assert isinstance(answer, Answer)
        assert not responder.requests.get("unknown"), responder.requests["unknown"]
        assert_grounded(answer, index)
        assert_six_timed_steps(answer)
        return Run(answer=answer, events=events, ledger=agent.ledger, responder=responder)

    return run


def degradations(run: Run, step: str) -> list[str]:
    return [why for entry in run.entries(step) for why in entry["degraded"]]


def test_every_stage_uses_the_model_and_the_answer_is_checked(ask):
    run = ask(Responder())
    answer = run.answer
    assert answer.mode.startswith("llm: m at http://127.0.0.1:")
    gold = next(n for n, p in enumerate(answer.passages, start=1) if GOLD in p["text"])
    assert answer.text == f"{GOLD} [{gold}]."
    assert [s["verdict"] for s in answer.sentences] == ["supported"]
    assert [c["doc_id"] for c in answer.citations] == [LIGHTHOUSE.doc_id]
    assert "".join(e.text for e in run.events if isinstance(e, TokenEvent)) == answer.text
    assert not any(isinstance(e, ResetEvent) for e in run.events)
    assert {v["kind"] for v in answer.variants} == {"original", "rewrite", "pseudo_doc"}
    windows = len(run.responder.requests["rerank_listwise"])
    assert windows >= 1
    calls = {entry["step"]: entry["llm_calls"] for entry in answer.trace}
    assert calls == {"expand": 2, "route": 0, "retrieve": 0, "rerank": windows, "answer": 1, "verify": 1}
    assert all(entry["degraded"] == [] for entry in answer.trace)
    assert all(record.error is None and record.attempts == 1 for record in run.ledger.records)
    assert len(run.ledger.records) == sum(len(r) for r in run.responder.requests.values())
    assert FIRST_ATTEMPT in user_text(run.responder.requests["answer"][0])
    bounded = ("rewrite", "query2doc", "rerank_listwise", "answer")
    assert all(body.get("max_tokens") for p in bounded for body in run.responder.requests[p])


@pytest.mark.parametrize(
    "malformed", ["{not json", json.dumps({"queries": ["lighthouse"]})], ids=["not-json", "wrong-shape"]
)
def test_a_malformed_rewrite_is_re_asked_once(ask, malformed):
    run = ask(Responder(scripted={"rewrite": [malformed]}))
    first, reask = run.responder.requests["rewrite"]
    assert reask["messages"][: len(first["messages"])] == first["messages"]
    assert reask["messages"][len(first["messages"])] == {"role": "assistant", "content": malformed}
    assert reask["messages"][-1]["role"] == "user"
    (expand,) = run.entries("expand")
    assert expand["llm_calls"] == 3
    assert expand["degraded"] == []
    assert len(run.records("expand")) == 3
    assert [v["kind"] for v in run.answer.variants].count("rewrite") == 3
    assert LIGHTHOUSE.phrase in run.answer.text


def test_a_rewrite_malformed_twice_degrades_expand_to_feedback(ask):
    run = ask(Responder(scripted={"rewrite": ["{not json", "still not json"]}))
    assert len(run.responder.requests["rewrite"]) == 2
    (why,) = degradations(run, "expand")
    assert why.startswith("rewrites failed")
    kinds = {v["kind"] for v in run.answer.variants}
    assert "rewrite" not in kinds and "feedback" in kinds
    assert LIGHTHOUSE.phrase in run.answer.text


@pytest.mark.parametrize(
    ("prompt", "stage"),
    [("rewrite", "expand"), ("rerank_listwise", "rerank"), ("answer", "answer"), ("verify", "verify")],
)
def test_a_rate_limit_is_retried_and_the_attempts_recorded(ask, prompt, stage):
    limited = Reply(status=429, error="slow down", headers={"retry-after": "0"})
    run = ask(Responder(scripted={prompt: [limited]}))
    attempts = sorted(record.attempts for record in run.records(stage))
    assert attempts[-1] == 2
    assert attempts.count(2) == 1
    assert all(record.error is None for record in run.ledger.records)
    assert degradations(run, stage) == []
    assert run.answer.text.startswith(GOLD)


def test_a_rerank_timeout_keeps_the_fused_order_and_the_answer_arrives(ask):
    quick = {"llm": {"timeout_s": 1.0, "max_retries": 1}}
    identity = json.dumps({"ranking": list(range(1, 41))})
    judged = ask(Responder(always={"rerank_listwise": identity}), **quick)
    slow = Reply(content=identity, delay_s=2.0)
    run = ask(Responder(always={"rerank_listwise": slow}), **quick)
    windows = judged.entries("rerank")[0]["llm_calls"]
    assert len(run.responder.requests["rerank_listwise"]) == 2 * windows
    reasons = degradations(run, "rerank")
    assert len(reasons) == windows
    assert all("kept its fused order" in why and "timed out" in why for why in reasons)
    assert all(record.error and record.attempts == 2 for record in run.records("rerank"))
    assert [p["chunk_id"] for p in run.answer.passages] == [p["chunk_id"] for p in judged.answer.passages]
    assert LIGHTHOUSE.phrase in run.answer.text


@pytest.mark.parametrize(
    "reply",
    [f"{GOLD} [1][9].", f"{GOLD} [1]. It was painted by the keepers [9]."],
    ids=["beside-a-valid-one", "alone"],
)
def test_a_citation_to_a_source_that_does_not_exist_is_removed_and_reported(ask, reply):
    run = ask(Responder(always={"answer": reply}))
    removed = [r for entry in run.entries("verify") for r in entry["outputs"]["removed"]]
    assert removed and {r["number"] for r in removed} == {9}
    assert all("out of range" in r["why"] for r in removed)
    assert "[9]" not in run.answer.text
    assert all(9 not in s["citations"] for s in run.answer.sentences)
    assert max(c["number"] for c in run.answer.citations) <= len(run.answer.passages)


@pytest.mark.parametrize(
    ("second", "verdict", "judge"),
    [
        (NAPOLEON, "unsupported", _judgements),
        (NAPOLEON, "unsupported", partial(_judgements, lenient=True)),
        (f"{GOLD} [1].", "supported", _judgements),
    ],
    ids=["still-unsupported", "lenient-judge-cannot-promote-it", "fixed"],
)
def test_an_unsupported_claim_is_retried_exactly_once_with_feedback(ask, second, verdict, judge):
    run = ask(Responder(scripted={"answer": [NAPOLEON, second]}, always={"verify": judge}))
    first_request, retry_request = run.responder.requests["answer"]
    assert FIRST_ATTEMPT in user_text(first_request)
    feedback = user_text(retry_request).partition("Problems found in your previous attempt:")[2]
    assert "painted purple by Napoleon" in feedback
    assert [entry["step"] for entry in run.answer.trace][-2:] == ["answer", "verify"]
    assert [entry["outputs"]["retry"] for entry in run.entries("verify")] == [True, False]
    assert [s["verdict"] for s in run.answer.sentences] == [verdict]
    (reset,) = [i for i, event in enumerate(run.events) if isinstance(event, ResetEvent)]
    assert "".join(e.text for e in run.events[reset:] if isinstance(e, TokenEvent)) == run.answer.text
    flagged = any("flagged" in notice for notice in run.answer.notices)
    assert flagged == (verdict == "unsupported")
    if verdict == "unsupported":
        assert all(c["verdict"] != "supported" for c in run.answer.citations)


@pytest.mark.parametrize("limit", [1, 2])
def test_the_llm_call_budget_is_a_hard_bound(ask, limit):
    run = ask(Responder(), max_llm_calls=limit)
    requests = sum(len(r) for r in run.responder.requests.values())
    assert requests <= limit
    assert sum(entry["llm_calls"] for entry in run.answer.trace) == requests
    degraded = {entry["step"] for entry in run.answer.trace if entry["degraded"]}
    assert "verify" in degraded
    assert all("budget" in why for step in degraded for why in degradations(run, step))
    assert LIGHTHOUSE.phrase in run.answer.text
    assert run.answer.sentences and all(s["verdict"] for s in run.answer.sentences)
