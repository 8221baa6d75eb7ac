"""What every node receives besides the state: settings, the index, the model and the run's limits.

:func:`ask_model` is the one way a node asks the model: under the question's limits (call budget,
deadline, an endpoint found down), and degrading the stage, or failing in strict mode, when it cannot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np

from agents._limits import CallBudget, RunLimits
from agents.errors import LLMError, StageDegradedError
from agents.llm import ChatModel, UsageLedger
from agents.settings import Settings
from agents.state import TraceEntry
from agents.vector_memo import VectorMemo
from retrieval.calibration import SignalWeights
from retrieval.embeddings import pools_sentences
from retrieval.index import Index

__all__ = ["CallBudget", "RunContext", "RunLimits", "StepRecorder", "ask_model", "record_step"]

T = TypeVar("T")


@dataclass
class RunContext:
    """Run-scoped dependencies of the graph's nodes (LangGraph's ``context_schema``)."""

    settings: Settings
    index: Index
    llm: ChatModel | None
    ledger: UsageLedger
    budget: CallBudget
    limits: RunLimits = field(init=False)
    memo: VectorMemo = field(default_factory=VectorMemo, repr=False)
    """Texts' embeddings, shared with the agent's other questions when the agent passes its own."""
    _computed: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.limits = RunLimits(self.budget, deadline_s=self.settings.deadline_s)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of texts, each embedded once per :attr:`memo` (route and retrieve share them, and so do
        the agent's questions)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        found = self.memo.vectors(texts, self.index.embedder.embed_documents)
        return np.stack([found[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """One text's embedding, cached like :meth:`embed`."""
        return self.embed([text])[0]

    @property
    def pooled_sentence_vectors(self) -> bool:
        """Whether the stored sentence vectors were pooled in their chunks' context (late) rather than
        read alone; then a stage comparing single sentences with a question reads them alone too."""
        return pools_sentences(self.settings.index, self.index.embedder)

    def once(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, run once per question for each key (rerank and answer share the drill-down)."""
        if key not in self._computed:
            self._computed[key] = compute()
        return cast(T, self._computed[key])

    def signal_weights(self) -> SignalWeights:
        """The corpus's BM25 and dense weights, or equal weights when ``retrieve.signal_weights`` is off."""
        return self.index.signal_weights() if self.settings.retrieve.signal_weights else SignalWeights()

    def model_for(self, stage: str) -> ChatModel | None:
        """The model bound to this question's limits, or None when none is configured."""
        return None if self.llm is None else self.llm.within(self.limits)


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

    def degrade(self, why: str, *, cause: BaseException | None = None) -> None:
        """Note that this step fell back to a weaker method, and why; in strict mode, fail instead."""
        if self.strict:
            raise StageDegradedError(
                f"{self.step}: {why} (strict mode is on; unset MULTIGRAIN_STRICT to degrade)", stage=self.step
            ) from cause
        self.degraded.append(why)


def ask_model(
    ctx: RunContext,
    rec: StepRecorder,
    call: Callable[[ChatModel], T],
    *,
    stage: str,
    what: str,
    fallback: str,
) -> T | None:
    """What ``call`` gets from the question's model, or None when there is no model to ask.

    Also None when the question's limits forbid a call (budget spent, deadline passed, endpoint down) or
    the call fails: the trace then says "``what`` skipped: why; ``fallback``" or "``what`` failed (why);
    ``fallback``", and in strict mode that is a StageDegradedError chained from the failure instead.
    """
    model = ctx.model_for(stage)
    if model is None:
        return None
    if (refusal := ctx.limits.refusal()) is not None:
        rec.degrade(f"{what} skipped: {refusal}; {fallback}")
        return None
    try:
        return call(model)
    except LLMError as exc:
        rec.degrade(f"{what} failed ({exc}); {fallback}", cause=exc)
        return None


@contextmanager
def record_step(step: str, ctx: RunContext, **inputs: Any) -> Iterator[StepRecorder]:
    """Time a step and count its LLM calls and tokens; ``recorder.entry`` holds the trace entry afterwards.

    The entry names the step as a plain string (a :class:`~agents.steps.Step` is a ``str`` subclass), so
    the state stays plain JSON for checkpoints.
    """
    recorder = StepRecorder(step=str(step), inputs=dict(inputs), strict=ctx.settings.strict)
    before = len(ctx.ledger.records)
    started = time.perf_counter()
    yield recorder
    calls = ctx.ledger.records[before:]
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    recorder.entry = TraceEntry(
        step=recorder.step,
        seconds=round(time.perf_counter() - started, 4),
        skipped=recorder.skipped,
        inputs=recorder.inputs,
        outputs=recorder.outputs,
        llm_calls=len(calls),
        tokens=tokens,
        degraded=recorder.degraded,
    )
