"""What every node receives besides the state: settings, the index, the model and the run's budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.errors import StageDegradedError
from agents.llm import ChatModel, UsageLedger
from agents.settings import Settings
from agents.state import TraceEntry
from retrieval.index import Index


@dataclass
class CallBudget:
    """A hard bound on the LLM calls of one question."""

    limit: int
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, calls: int = 1) -> bool:
        """Reserve calls; False (and nothing reserved) when that would pass the limit."""
        with self._lock:
            if self.used + calls > self.limit:
                return False
            self.used += calls
            return True


@dataclass
class RunContext:
    """Run-scoped dependencies of the graph's nodes (LangGraph's ``context_schema``)."""

    settings: Settings
    index: Index
    llm: ChatModel | None
    ledger: UsageLedger
    budget: CallBudget
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of texts, each embedded at most once per question (route and retrieve share them)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.index.embedder.embed_documents(missing), strict=True):
                self._vectors[text] = vector
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """One text's embedding, cached like :meth:`embed`."""
        return self.embed([text])[0]

    def model_for(self, stage: str, calls: int = 1) -> ChatModel | None:
        """The model if one is configured and the budget allows ``calls`` more calls, else None."""
        if self.llm is None or not self.budget.take(calls):
            return None
        return self.llm


@dataclass
class StepRecorder:
    """Collects one step's trace entry while the step runs."""

    step: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    skipped: bool = False
    strict: bool = False
    entry: TraceEntry | None = None

    def degrade(self, why: str) -> None:
        """Note that this step fell back to a weaker method, and why; in strict mode, fail instead."""
        if self.strict:
            raise StageDegradedError(
                f"{self.step}: {why} (strict mode is on; unset MULTIGRAIN_STRICT to degrade)"
            )
        self.degraded.append(why)


@contextmanager
def record_step(step: str, ctx: RunContext, **inputs: Any) -> Iterator[StepRecorder]:
    """Time a step and count its LLM calls and tokens; ``recorder.entry`` holds the trace entry afterwards."""
    recorder = StepRecorder(step=step, inputs=dict(inputs), strict=ctx.settings.strict)
    before = len(ctx.ledger.records)
    started = time.perf_counter()
    yield recorder
    calls = ctx.ledger.records[before:]
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    recorder.entry = TraceEntry(
        step=step,
        seconds=round(time.perf_counter() - started, 4),
        skipped=recorder.skipped,
        inputs=recorder.inputs,
        outputs=recorder.outputs,
        llm_calls=len(calls),
        tokens=tokens,
        degraded=recorder.degraded,
    )
