"""Route (coarse grain): choose the documents worth searching, from their profiles, before any chunk search.

Signals, each a ranking of documents: dense similarity to the profile and to the chunk centroid, BM25
over whole documents, and the best corpus-wide chunk hits inside each document. They are fused by
reciprocal rank; an adaptive number of documents is kept at the largest score gap, and when the
confidence is low the search widens.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.llm import ReplyBudget
from agents.nodes._queries import merge_variants
from agents.nodes._text import valid_numbers
from agents.state import AgentState, RoutedDoc
from agents.steps import Step
from prompts import render
from prompts.schemas import DocumentChoice
from retrieval.fusion import gap_cut, ranked, rrf
from retrieval.hits import DocProfile

JUDGE_CANDIDATES = 10
"""How many of the best fused documents the LLM judge may choose among."""
NEAR_MISSES = 10
"""How many documents past the kept ones the trace lists with their scores and titles."""
CONFIDENCE_SCALE = 10
"""A score drop after the last kept document of 1/CONFIDENCE_SCALE of the top score is full confidence."""
CHOICE_REPLY = ReplyBudget(fixed=16, per_item=6)
"""The judge's reply lists document numbers."""


def route_documents(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score every candidate document and keep the ones the fine-grained search may look inside."""
    ctx = runtime.context
    config = ctx.settings.route
    if not config.enabled:
        with record_step(Step.ROUTE, ctx, variants=len(state["variants"])) as rec:
            rec.skipped = True
            rec.outputs = {"kept": "all documents"}
        return {"routed": [], "route_confidence": 0.0, "widened": True, "trace": [rec.entry]}
    with record_step(Step.ROUTE, ctx, variants=len(state["variants"])) as rec:
        index = ctx.index
        query = merge_variants(
            state["variants"], ctx.embed, question_repeats=ctx.settings.expand.question_repeats
        )
        signals = {
            "profile": [r.id for r in index.dense_documents(query.vector, config.candidates, by="profile")],
            "centroid": [r.id for r in index.dense_documents(query.vector, config.candidates, by="centroid")],
            "bm25": [d for d, _ in index.bm25_documents(query.lexical, config.candidates)],
        }
        if config.chunk_probe_k:
            dense_hits = index.dense_chunks(query.vector, config.chunk_probe_k)
            lexical_hits = index.bm25_chunks(query.lexical, config.chunk_probe_k)
            signals["chunks_dense"] = list(dict.fromkeys(h.doc_id for h in dense_hits))
            signals["chunks_bm25"] = list(dict.fromkeys(h.doc_id for h in lexical_hits))
        fused = rrf(list(signals.values()))
        order = ranked(fused)
        scores = [fused[d] for d in order]
        keep = gap_cut(scores, lo=config.min_docs, hi=config.max_docs)
        confidence = _confidence(scores, keep)
        widened = confidence < config.low_confidence
        if widened:
            keep = min(len(order), max(keep * config.widen_factor, config.max_docs))
        read = order[: max(keep, JUDGE_CANDIDATES) + NEAR_MISSES]
        profiles = {p.doc_id: p for p in index.documents_by_id(read)}
        if config.llm_judge and ctx.llm is not None:
            order = _judged_order(
                state.get("standalone") or state["question"], order, keep, profiles, ctx, rec
            )
        titles = {d: p.title for d, p in profiles.items()}
        routed = [
            RoutedDoc(
                doc_id=d,
                title=titles.get(d, d),
                score=round(fused[d], 6),
                kept=i < keep,
                signals={
                    name: float(ranking.index(d) + 1) for name, ranking in signals.items() if d in ranking
                },
            )
            for i, d in enumerate(order[: keep + NEAR_MISSES])
        ]
        rec.outputs |= {
            "kept": keep,
            "confidence": round(confidence, 3),
            "widened": widened,
            "candidates": len(order),
        }
    return {"routed": routed, "route_confidence": confidence, "widened": widened, "trace": [rec.entry]}


def _judged_order(
    question: str,
    order: list[str],
    keep: int,
    profiles: dict[str, DocProfile],
    ctx: RunContext,
    rec: StepRecorder,
) -> list[str]:
    """Let the model choose among the top candidates' profiles; its picks lead, the fused order follows."""
    shown = [d for d in order[: min(keep, JUDGE_CANDIDATES)] if d in profiles]
    if not shown:
        rec.degrade("no candidate document has a profile to judge; kept the fused document order")
        return order
    listing = "\n\n".join(
        f"[{i + 1}] {profiles[d].title}\n{profiles[d].summary}\nKeywords: {', '.join(profiles[d].keywords)}"
        for i, d in enumerate(shown)
    )
    reply = ask_model(
        ctx,
        rec,
        lambda model: model.structured(
            render("route_judge", question=question, documents=listing),
            DocumentChoice,
            stage=Step.ROUTE,
            max_tokens=CHOICE_REPLY.tokens(len(shown)),
        ),
        stage=Step.ROUTE,
        what="document judge",
        fallback="kept the fused document order",
    )
    if reply is None:
        return order
    picked = [shown[n - 1] for n in valid_numbers(reply.documents, len(shown))]
    if not picked:
        rec.degrade("document judge named no valid document; kept the fused order")
        return order
    rec.outputs["judge_picked"] = picked
    return picked + [d for d in order if d not in picked]


def _confidence(scores: list[float], keep: int) -> float:
    """How clearly the kept documents stand out: the relative drop after the last kept one."""
    if not scores or keep >= len(scores):
        return 1.0
    top = scores[0]
    return max(0.0, min(1.0, (scores[keep - 1] - scores[keep]) / top * CONFIDENCE_SCALE)) if top > 0 else 0.0
