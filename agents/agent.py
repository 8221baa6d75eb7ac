"""The ``Agent`` facade: ask a question, stream its steps, get a cited and checked ``Answer``."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from langgraph.errors import GraphRecursionError

from agents.context import CallBudget, RunContext
from agents.graph import build_graph
from agents.llm import ChatModel, UsageLedger
from agents.openai_chat import OpenAIChatModel
from agents.settings import Settings, load_settings
from agents.state import AgentState, AnswerSentence, Citation, Passage, QueryVariant, RoutedDoc, TraceEntry
from agents.vector_memo import VectorMemo
from retrieval.index import Index
from retrieval.urls import redact_url

OFFLINE_NOTICE = (
    "No LLM is configured (set OPENAI_API_KEY or OPENAI_BASE_URL): offline mode. Expansion uses "
    "pseudo-relevance feedback, reranking uses sentence-level similarity, "
    "and the answer quotes the documents."
)
RECURSION_LIMIT = 40
OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class Answer:
    """A question's answer: text, checked citations and the trace of every step."""

    question: str
    text: str
    sentences: list[AnswerSentence]
    citations: list[Citation]
    trace: list[TraceEntry]
    thread_id: str
    mode: str
    insufficient: bool = False
    notices: list[str] = field(default_factory=list)
    variants: list[QueryVariant] = field(default_factory=list)
    routed: list[RoutedDoc] = field(default_factory=list)
    route_confidence: float = 0.0
    widened: bool = False
    retrieved: list[Passage] = field(default_factory=list)
    retrieved_by_variant: dict[str, list[str]] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data."""
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The answer serialised to JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


@dataclass(frozen=True)
class StepEvent:
    """A step finished: its trace entry (streamed before the answer)."""

    step: str
    entry: TraceEntry


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the answer as it is written."""

    text: str


@dataclass(frozen=True)
class ResetEvent:
    """The answer streamed so far is withdrawn (a retry or a fallback follows); ``reason`` says why."""

    reason: str


Event = StepEvent | TokenEvent | ResetEvent | Answer


class Agent:
    """Question answering over an index, one LangGraph run per question."""

    def __init__(
        self, settings: Settings | None = None, *, index: Index | None = None, llm: ChatModel | None = None
    ) -> None:
        self.settings = settings or load_settings()
        self.index = index or Index(self.settings.index)
        if llm is None and self.settings.llm.enabled:
            llm = OpenAIChatModel(self.settings.llm)
        self.llm = llm
        self.ledger = llm.ledger if llm is not None else UsageLedger()
        self.graph = build_graph(self.settings.home / "conversations.sqlite")
        self._thread_locks: dict[str, threading.Lock] = {}
        self._thread_locks_guard = threading.Lock()
        self._memo = VectorMemo()

    @property
    def mode(self) -> str:
        """'offline', or the model and endpoint the LLM stages use (any key in the URL masked)."""
        if self.llm is None:
            return "offline"
        return f"llm: {self.settings.llm.model} at {redact_url(self.settings.llm.base_url or OPENAI_URL)}"

    def _thread_lock(self, thread: str) -> threading.Lock:
        """The lock that lets one question at a time run on ``thread``, so no turn's history is lost."""
        with self._thread_locks_guard:
            return self._thread_locks.setdefault(thread, threading.Lock())

    def _context(self) -> RunContext:
        return RunContext(
            settings=self.settings,
            index=self.index,
            llm=self.llm,
            ledger=self.ledger,
            budget=CallBudget(limit=self.settings.max_llm_calls),
            memo=self._memo,
        )

    def ask(self, question: str, thread_id: str | None = None) -> Answer:
        """Answer a question (a follow-up when ``thread_id`` names an earlier conversation)."""
        answer = None
        for event in self.stream(question, thread_id=thread_id):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(self, question: str, thread_id: str | None = None) -> Iterator[Event]:
        """One event per finished step, the answer's tokens as they come, then the ``Answer``."""
        if not question.strip():
            raise ValueError("the question is empty")
        thread = thread_id or uuid.uuid4().hex
        config = {"configurable": {"thread_id": thread}, "recursion_limit": RECURSION_LIMIT}
        notices: list[str] = []
        with self._thread_lock(thread):
            yield from self._run_graph(question, config, notices)
            state: AgentState = self.graph.get_state(config).values
        yield self._answer(question, thread, state, notices)

    def _run_graph(self, question: str, config: dict[str, Any], notices: list[str]) -> Iterator[Event]:
        """The graph's step, token and reset events for one question; a step budget overrun is a notice."""
        try:
            for mode, payload in self.graph.stream(
                {"question": question},
                config,
                context=self._context(),
                stream_mode=["updates", "custom"],
            ):
                if mode == "custom" and payload.get("type") == "token":
                    yield TokenEvent(text=payload["text"])
                elif mode == "custom" and payload.get("type") == "reset":
                    yield ResetEvent(reason=payload.get("reason", ""))
                elif mode == "updates":
                    for step, update in payload.items():
                        for entry in (update or {}).get("trace", []):
                            yield StepEvent(step=step, entry=entry)
        except GraphRecursionError:
            notices.append("the step budget ran out before the answer was checked; showing what was reached")

    def _answer(self, question: str, thread: str, state: AgentState, notices: list[str]) -> Answer:
        if self.llm is None:
            notices.insert(0, OFFLINE_NOTICE)
        flagged = [s for s in state.get("sentences", []) if s.get("verdict") == "unsupported"]
        if flagged:
            notices.append(
                f"{len(flagged)} sentence(s) could not be verified against the sources and are flagged"
            )
        return Answer(
            question=question,
            text=state.get("answer_text", ""),
            sentences=state.get("sentences", []),
            citations=state.get("citations", []),
            trace=state.get("trace", []),
            thread_id=thread,
            mode=self.mode,
            insufficient=bool(state.get("insufficient", False)),
            notices=notices,
            variants=state.get("variants", []),
            routed=state.get("routed", []),
            route_confidence=float(state.get("route_confidence", 0.0)),
            widened=bool(state.get("widened", False)),
            retrieved=state.get("retrieved", []),
            retrieved_by_variant=state.get("retrieved_by_variant", {}),
            passages=state.get("ranked", []),
        )

    def threads(self) -> list[str]:
        """Conversation ids stored in the checkpointer, newest first."""
        saver = self.graph.checkpointer
        seen: dict[str, None] = {}
        for item in saver.list(None):
            seen.setdefault(item.config["configurable"]["thread_id"], None)
        return list(seen)

    def history(self, thread_id: str) -> list[dict[str, str]]:
        """The questions and answers of a conversation."""
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        return list(state.get("history", []))
