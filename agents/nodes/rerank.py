"""Rerank: the retrieved chunks reordered by how well they answer the question.

With an LLM: listwise or pointwise judgements in windows; a window whose reply is malformed keeps
its fused order and the trace says so. Offline: sentence-level late interaction (the best similarity
between the question and any sentence of the chunk) fused with lexical overlap and the retrieval order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.context import RunContext, StepRecorder, record_step
from agents.errors import LLMError
from agents.llm import map_concurrent
from agents.state import AgentState, Passage
from prompts import render
from retrieval.fusion import ranked, rrf
from retrieval.textutil import content_words


class WindowJudgement(BaseModel):
    """The model's judgement of one window of passages."""

    ranking: list[int] = Field(description="Passage numbers from most to least useful for answering.")


def rerank_passages(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Order the retrieved passages and keep the best k for the answer."""
    ctx = runtime.context
    config = ctx.settings.rerank
    retrieved = state.get("retrieved", [])
    question = state.get("standalone") or state["question"]
    with record_step("rerank", ctx, passages=len(retrieved)) as rec:
        if not config.enabled:
            rec.skipped = True
            order = retrieved
        else:
            order = _late_interaction(question, retrieved, ctx)
            if ctx.llm is not None:
                order = _llm_order(question, order, ctx, rec)
        kept = order[: config.k]
        before = [p["chunk_id"] for p in retrieved]
        rec.outputs = {
            "order": [
                {"chunk_id": p["chunk_id"], "before": before.index(p["chunk_id"]) + 1, "after": i + 1}
                for i, p in enumerate(order)
            ],
            "kept": len(kept),
        }
    return {"ranked": kept, "trace": [rec.entry]}


def _late_interaction(question: str, passages: list[Passage], ctx: RunContext) -> list[Passage]:
    """Fuse the retrieval order with best-sentence similarity and lexical overlap."""
    if not passages:
        return []
    index = ctx.index
    vector = index.embedder.embed_query(question)
    hits = index.chunks([p["chunk_id"] for p in passages])
    sentences = index.sentences_of(hits)
    terms = set(content_words(question))
    maxsim: dict[str, float] = {}
    overlap: dict[str, float] = {}
    for p in passages:
        vectors = [s.vector for s in sentences.get(p["chunk_id"], [])]
        maxsim[p["chunk_id"]] = float(np.max(np.stack(vectors) @ vector)) if vectors else p["score"]
        found = set(content_words(f"{p['title']} {p['text']}"))
        overlap[p["chunk_id"]] = len(terms & found) / len(terms) if terms else 0.0
    fused = rrf(
        [[p["chunk_id"] for p in passages], ranked(maxsim), ranked(overlap)],
        weights=[1.0, 1.0, 0.5],
    )
    by_id = {p["chunk_id"]: p for p in passages}
    return [{**by_id[c], "score": round(fused[c], 6)} for c in ranked(fused)]


def _llm_order(question: str, passages: list[Passage], ctx: RunContext, rec: StepRecorder) -> list[Passage]:
    """Let the model order each window; a window it fails on keeps its order."""
    config = ctx.settings.rerank
    windows = [passages[i : i + config.window] for i in range(0, len(passages), config.window)]
    model = ctx.model_for("rerank", len(windows))
    if model is None:
        rec.degrade("LLM call budget spent; kept the offline order")
        return passages

    def judge(window: list[Passage]) -> list[Passage]:
        listing = "\n\n".join(f"[{i + 1}] {p['title']}: {p['text']}" for i, p in enumerate(window))
        try:
            reply = model.structured(
                render(f"rerank_{config.mode}", question=question, passages=listing), WindowJudgement, stage="rerank"
            )
        except LLMError as exc:
            rec.degrade(f"window of {len(window)} kept its fused order: {exc}")
            return window
        picked = [n - 1 for n in dict.fromkeys(reply.ranking) if 1 <= n <= len(window)]
        if not picked:
            rec.degrade(f"window of {len(window)} kept its fused order: the model named no valid passage")
            return window
        rest = [i for i in range(len(window)) if i not in picked]
        return [window[i] for i in picked + rest]

    judged = map_concurrent(judge, windows, max_workers=ctx.settings.llm.max_concurrency)
    return [p for window in judged for p in window]
