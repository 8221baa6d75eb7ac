"""Rerank: the retrieved chunks reordered by how well they answer the question.

With an LLM: listwise or pointwise judgements in windows; a window whose reply is malformed keeps
its fused order and the trace says so. Offline: sentence-level late interaction (the best similarity
between the question and any sentence of the chunk) fused with lexical overlap and the retrieval order;
then the evidence is ordered as a chain: of the best two, a passage from a document the question names
goes first, and the passages of documents that this first passage names move up behind it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.llm import ReplyBudget, map_concurrent
from agents.nodes._drill import drilled
from agents.nodes._readings import alone
from agents.nodes._text import valid_numbers
from agents.state import AgentState, Passage
from agents.steps import Step
from prompts import render
from prompts.schemas import WindowJudgement
from retrieval.fusion import ranked, rrf
from retrieval.hits import passage_from_hit
from retrieval.index import SentenceVector
from retrieval.lexical import LexicalIndex, tokenize

TERM_WEIGHT = 2.0
"""How much the IDF-weighted share of question terms counts beside a sentence's cosine similarity."""
LATE_INTERACTION_WEIGHTS = (0.5, 1.0, 1.0, 2.0)
"""RRF weights of: retrieval order, best-sentence cosine, BM25 among candidates, cosine plus term match."""
ANCHOR_CHOICES = 2
"""How far down the order a passage from a document the question names may move to the top."""
NAMED_NEAR_TOP = 3
"""A question naming several documents ("NCT06152666 or NCT06152679") has each one's best passage among
this many first passages."""
_CHOICE = re.compile(r"[:,]\s*(?P<first>[^:,?]+?)\s+or\s+(?P<second>[^:,?]+?)\s*\?\s*$")
"""A question's choice between two things, set off by a colon or comma: "…: the VRULT study or the
Access-H2O study?"."""
RANKING_REPLY = ReplyBudget(fixed=32, per_item=8)
"""The reply ranks a window's passages by number."""


def rerank_passages(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Order the retrieved passages and keep the best k for the answer."""
    ctx = runtime.context
    config = ctx.settings.rerank
    retrieved = state.get("retrieved", [])
    question = state.get("standalone") or state["question"]
    with record_step(Step.RERANK, ctx, passages=len(retrieved)) as rec:
        if not config.enabled:
            rec.skipped = True
            order = retrieved
        else:
            order = _late_interaction(question, retrieved, ctx)
            if config.chain:
                order = _as_chain(question, order, ctx)
            if config.drill_down:
                order = drilled(question, order, ctx)
            order = _each_named_document_near_the_top(question, order, ctx)
            if ctx.llm is not None:
                order = _llm_order(question, order, ctx, rec)
        kept = order[: config.k]
        before = [p["chunk_id"] for p in retrieved]
        rec.outputs = {
            "order": [
                {
                    "chunk_id": p["chunk_id"],
                    "before": before.index(p["chunk_id"]) + 1 if p["chunk_id"] in before else None,
                    "after": i + 1,
                }
                for i, p in enumerate(order)
            ],
            "kept": len(kept),
        }
    return {"ranked": kept, "trace": [rec.entry]}


def _late_interaction(question: str, passages: list[Passage], ctx: RunContext) -> list[Passage]:
    """Fuse the retrieval order with three views of each passage: its best sentence by dense similarity, its
    best sentence by dense similarity plus IDF-weighted term match, and BM25 among the candidates."""
    if not passages:
        return []
    index = ctx.index
    ids = [p["chunk_id"] for p in passages]
    vector = ctx.embed_query(question)
    sentences = index.sentences_of(index.chunks(ids))
    terms = set(tokenize([question])[0])
    sentence_terms = {c: [set(t) for t in tokenize([s.text for s in sentences.get(c, [])])] for c in ids}
    idf = _idf(terms, [t for found in sentence_terms.values() for t in found])
    total = sum(idf.values()) or 1.0
    closeness = _similarities({c: sentences.get(c, []) for c in ids}, vector, ctx)
    maxsim: dict[str, float] = {}
    matched: dict[str, float] = {}
    for p in passages:
        title_terms = set(tokenize([p["title"]])[0])
        sims = closeness[p["chunk_id"]] or [p["score"]]
        matches = [
            sum(idf[t] for t in terms & (words | title_terms)) / total
            for words in sentence_terms[p["chunk_id"]]
        ]
        maxsim[p["chunk_id"]] = max(sims)
        matched[p["chunk_id"]] = max(
            (sim + TERM_WEIGHT * match for sim, match in zip(sims, matches, strict=False)),
            default=0.0,
        )
    local = LexicalIndex.build(ids, ids, [f"{p['title']}\n{p['text']}" for p in passages])
    bm25 = dict(zip(ids, (float(x) for x in local.scores(question)), strict=True))
    fused = rrf([ids, ranked(maxsim), ranked(bm25), ranked(matched)], weights=LATE_INTERACTION_WEIGHTS)
    by_id = {p["chunk_id"]: p for p in passages}
    return [{**by_id[c], "score": round(fused[c], 6)} for c in ranked(fused)]


def _similarities(
    found: dict[str, list[SentenceVector]], vector: np.ndarray, ctx: RunContext
) -> dict[str, list[float]]:
    """Each passage's sentences' similarities with the question, each sentence read alone (see
    :mod:`agents.nodes._readings`)."""
    keys = [(c, i) for c, sentences in found.items() for i in range(len(sentences))]
    flat = alone([found[c][i] for c, i in keys], vector, ctx)
    by_passage: dict[str, list[float]] = {c: [] for c in found}
    for (c, _), similarity in zip(keys, flat, strict=True):
        by_passage[c].append(similarity)
    return by_passage


def _as_chain(question: str, order: list[Passage], ctx: RunContext) -> list[Passage]:
    """``order`` with a passage the question names first (if one of the best two is) and then, behind it,
    the passages of the documents that first passage names, each group keeping its relative order."""
    if len(order) < 2:
        return order
    index = ctx.index
    named = set(index.documents_named_in(question))
    first = next((p for p in order[:ANCHOR_CHOICES] if p["doc_id"] in named), order[0])
    rest = [p for p in order if p is not first]
    linked = set(index.documents_named_in(first["text"], exclude=[first["doc_id"]]))
    ids = [p["chunk_id"] for p in rest]
    fused = rrf([ids, [p["chunk_id"] for p in rest if p["doc_id"] in linked]])
    by_id = {p["chunk_id"]: p for p in rest}
    return [first] + [by_id[c] for c in ranked(fused)]


def _each_named_document_near_the_top(question: str, order: list[Passage], ctx: RunContext) -> list[Passage]:
    """``order`` with the best passage of each document the question asks about (see
    :func:`_documents_asked_about`) moved up behind the first passage when it is not among the first
    :data:`NAMED_NEAR_TOP`, fetched when it was not retrieved: a question about two documents compares
    them, and one document's passages crowd out the other's. A question about one or none keeps the order."""
    asked_about = _documents_asked_about(question, ctx)
    if len(asked_about) < 2 or not order:
        return order
    near = {p["doc_id"] for p in order[:NAMED_NEAR_TOP]}
    wanted = [d for d in asked_about if d not in near]
    best = {d: next((p for p in order if p["doc_id"] == d), None) for d in wanted}
    missing = [d for d, passage in best.items() if passage is None]
    if missing:
        vector = ctx.embed_query(question)
        best |= {h.doc_id: passage_from_hit(h, 0.0) for h in ctx.index.nearest_chunk_of_each(vector, missing)}
    lifted = [passage for passage in best.values() if passage is not None]
    rest = [p for p in order[1:] if p not in lifted]
    return [order[0], *lifted, *rest]


def _documents_asked_about(question: str, ctx: RunContext) -> list[str]:
    """The documents a question names, by title or file identifier, and for a choice between two things
    ("Which was started first, Arthur's Magazine or First for Women?") each one's best document by BM25."""
    index = ctx.index
    asked = index.documents_named_in(question)
    choice = _CHOICE.search(question)
    if choice is not None:
        for alternative in choice.group("first", "second"):
            asked += [doc_id for doc_id, _ in index.bm25_documents(alternative, 1)]
    return list(dict.fromkeys(asked))


def _idf(terms: set[str], sentences: list[set[str]]) -> dict[str, float]:
    """Inverse document frequency of the question's terms among the candidate sentences."""
    n = len(sentences) or 1
    return {t: math.log(1 + n / (1 + sum(t in s for s in sentences))) for t in terms}


def _llm_order(question: str, passages: list[Passage], ctx: RunContext, rec: StepRecorder) -> list[Passage]:
    """Let the model order each window; a window it fails on keeps its order."""
    config = ctx.settings.rerank
    windows = [passages[i : i + config.window] for i in range(0, len(passages), config.window)]

    def judge(window: list[Passage]) -> list[Passage]:
        listing = "\n\n".join(f"[{i + 1}] {p['title']}: {p['text']}" for i, p in enumerate(window))
        reply = ask_model(
            ctx,
            rec,
            lambda model: model.structured(
                render(f"rerank_{config.mode}", question=question, passages=listing),
                WindowJudgement,
                stage=Step.RERANK,
                max_tokens=RANKING_REPLY.tokens(len(window)),
            ),
            stage=Step.RERANK,
            what=f"window of {len(window)}",
            fallback="kept its fused order",
        )
        if reply is None:
            return window
        picked = [n - 1 for n in valid_numbers(reply.ranking, len(window))]
        if not picked:
            rec.degrade(f"window of {len(window)} kept its fused order: the model named no valid passage")
            return window
        rest = [i for i in range(len(window)) if i not in picked]
        return [window[i] for i in picked + rest]

    judged = map_concurrent(judge, windows, max_workers=ctx.settings.llm.max_concurrency)
    return [p for window in judged for p in window]
