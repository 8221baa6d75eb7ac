"""The graph's state: plain JSON-ready dicts, so checkpoints and traces serialise without custom types."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from agents.steps import Step
from prompts.schemas import Verdict
from retrieval.hits import Passage


class QueryVariant(TypedDict):
    """One form of the question that searches run on."""

    text: str
    kind: Literal["original", "standalone", "rewrite", "keywords", "pseudo_doc", "feedback"]


class RoutedDoc(TypedDict):
    """A document the route stage scored."""

    doc_id: str
    title: str
    score: float
    kept: bool
    signals: dict[str, float]


class Citation(TypedDict):
    """One [n] in the answer, checked against the passage it points at."""

    number: int
    chunk_id: str
    doc_id: str
    title: str
    page: int | None
    section: str
    start: int
    end: int
    quote: str
    verdict: Verdict
    support: float
    grounded: NotRequired[bool]
    """The source states the sentence (its words are in the passage, or its verdict is 'supported')."""
    answers_question: NotRequired[bool]
    """The quoted source answers the question asked, not merely a related one (nor is it an instruction)."""
    relevance: NotRequired[float]
    """How closely the quote, read with its title, bears on the question: 0 to 1."""
    relevance_note: NotRequired[str]
    """Why the quote does not answer the question; empty when it does."""


class AnswerSentence(TypedDict):
    """A sentence of the answer with the passages it cites."""

    text: str
    citations: list[int]
    verdict: Verdict | None
    support: float
    grounded: NotRequired[bool]
    """Some cited source states the sentence."""
    answers_question: NotRequired[bool]
    """Some cited source answers the question asked."""


class TraceEntry(TypedDict):
    """What one step did: inputs, outputs, time, LLM use and any degradation."""

    step: str
    seconds: float
    skipped: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    llm_calls: int
    tokens: int
    degraded: list[str]


def add_trace(old: list[TraceEntry], new: list[TraceEntry]) -> list[TraceEntry]:
    """Append a step's entries; the first step of a new question starts the trace afresh."""
    if new and new[0]["step"] == Step.EXPAND:
        return list(new)
    return [*old, *new]


class AgentState(TypedDict, total=False):
    """Everything a question's run reads and writes."""

    question: str
    history: Annotated[list[dict[str, str]], operator.add]
    standalone: str
    variants: list[QueryVariant]
    routed: list[RoutedDoc]
    route_confidence: float
    widened: bool
    retrieved: list[Passage]
    retrieved_by_variant: dict[str, list[str]]
    ranked: list[Passage]
    answer_text: str
    sentences: list[AnswerSentence]
    citations: list[Citation]
    attempts: int
    feedback: str
    insufficient: bool
    trace: Annotated[list[TraceEntry], add_trace]
    llm_calls: int


PER_TURN_RESET: dict[str, Any] = {
    "standalone": "",
    "variants": [],
    "routed": [],
    "route_confidence": 0.0,
    "widened": False,
    "retrieved": [],
    "retrieved_by_variant": {},
    "ranked": [],
    "answer_text": "",
    "sentences": [],
    "citations": [],
    "attempts": 0,
    "feedback": "",
    "insufficient": False,
    "llm_calls": 0,
}
