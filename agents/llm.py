"""The model boundary: what nodes may ask of a chat model, and the ledger every call is recorded in.

Nodes receive a :class:`ChatModel` and call ``text``, ``structured`` or ``stream``. The real one is
:class:`agents.openai_chat.OpenAIChatModel` (any OpenAI-compatible endpoint); tests pass in-process
stand-ins that implement the same protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from agents._limits import RunLimits

__all__ = ["CallRecord", "ChatModel", "Messages", "ReplyBudget", "UsageLedger", "map_concurrent"]

T = TypeVar("T", bound=BaseModel)
A = TypeVar("A")
R = TypeVar("R")

Messages = list[dict[str, str]]
"""OpenAI-style chat messages: ``{"role": ..., "content": ...}``."""


@dataclass
class CallRecord:
    """One model call: what it cost and how it went."""

    stage: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int
    cost_usd: float
    mode: str
    error: str | None = None


class UsageLedger:
    """Thread-safe list of the calls a model made, with totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        """Append one call's record."""
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[CallRecord]:
        """A snapshot of the records so far, oldest first."""
        with self._lock:
            return list(self._records)

    def totals(self) -> dict[str, float]:
        """Calls, failures, attempts, tokens, seconds and cost over all records."""
        return _summarise(self.records)

    def by_stage(self) -> dict[str, dict[str, float]]:
        """The same totals per stage, in the order stages first appeared."""
        stages: dict[str, list[CallRecord]] = {}
        for record in self.records:
            stages.setdefault(record.stage, []).append(record)
        return {stage: _summarise(records) for stage, records in stages.items()}


@dataclass(frozen=True)
class ReplyBudget:
    """The ``max_tokens`` of a reply that lists items: a fixed part (its JSON frame) plus a share per item."""

    fixed: int
    per_item: int

    def tokens(self, items: int) -> int:
        """The budget of a reply listing ``items`` items."""
        return self.fixed + self.per_item * items


class ChatModel(Protocol):
    """What the agent and its nodes ask of a chat model."""

    @property
    def ledger(self) -> UsageLedger:
        """Where every call this model makes is recorded."""
        ...

    def within(self, limits: RunLimits) -> ChatModel:
        """This model bound to one question's limits; a stand-in that sends no requests may return itself."""
        ...

    def text(self, messages: Messages, *, stage: str, max_tokens: int | None = None) -> str:
        """The reply to ``messages`` as text, at most ``max_tokens`` tokens."""
        ...

    def structured(
        self, messages: Messages, schema: type[T], *, stage: str, max_tokens: int | None = None
    ) -> T:
        """The reply to ``messages`` validated as ``schema``; LLMOutputError when it cannot be."""
        ...

    def stream(self, messages: Messages, *, stage: str, max_tokens: int | None = None) -> Iterator[str]:
        """The reply to ``messages`` piece by piece as it arrives, at most ``max_tokens`` tokens."""
        ...


def map_concurrent(fn: Callable[[A], R], items: Sequence[A], *, max_workers: int) -> list[R]:
    """Apply ``fn`` to every item on up to ``max_workers`` threads; results keep the order of ``items``."""
    if max_workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _summarise(records: Sequence[CallRecord]) -> dict[str, float]:
    return {
        "calls": len(records),
        "failed_calls": sum(record.error is not None for record in records),
        "attempts": sum(record.attempts for record in records),
        "prompt_tokens": sum(record.prompt_tokens for record in records),
        "completion_tokens": sum(record.completion_tokens for record in records),
        "seconds": sum(record.seconds for record in records),
        "cost_usd": sum(record.cost_usd for record in records),
    }
