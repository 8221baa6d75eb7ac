"""Expand: the question in several forms (rewrites, pseudo-documents), merged MuGI-style downstream.

With an LLM: a standalone rewrite of a follow-up, N rewrites and query2doc pseudo-documents, generated
concurrently. Offline: pseudo-relevance feedback (a first-pass search's best passages as the
pseudo-document, RM3-style expansion terms) and keyword rewrites.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langgraph.runtime import Runtime

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.llm import ChatModel, ReplyBudget, map_concurrent
from agents.nodes._followup import needs_thread, offline_standalone
from agents.state import PER_TURN_RESET, AgentState, QueryVariant
from agents.steps import Step
from prompts import render
from prompts.schemas import Rewrites, Standalone
from retrieval.fusion import ranked, rrf
from retrieval.textutil import content_words

STANDALONE_MAX_TOKENS = 200
"""A standalone rewrite of a follow-up is one question in a small JSON object."""
PSEUDO_DOC_MAX_TOKENS = 200
"""A query2doc pseudo-document is a short passage: enough to carry the vocabulary of an answer."""
REWRITES_REPLY = ReplyBudget(fixed=40, per_item=60)
"""Each rewrite is one search query."""


def expand_query(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Produce the query variants every later search runs on."""
    ctx = runtime.context
    question = state["question"].strip()
    history = state.get("history", [])
    with record_step(Step.EXPAND, ctx, question=question, history_turns=len(history)) as rec:
        standalone = _standalone(question, history, ctx, rec)
        variants: list[QueryVariant] = [QueryVariant(text=question, kind="original")]
        if standalone != question:
            variants.append(QueryVariant(text=standalone, kind="standalone"))
        if not ctx.settings.expand.enabled:
            rec.skipped = True
        elif ctx.llm is not None:
            variants += _generated_variants(standalone, ctx, rec)
        if ctx.settings.expand.enabled and len(variants) <= 2:
            variants += _feedback_variants(standalone, ctx)
        rec.outputs = {"standalone": standalone, "variants": variants}
    return {**PER_TURN_RESET, "standalone": standalone, "variants": variants, "trace": [rec.entry]}


def _standalone(question: str, history: list[dict[str, str]], ctx: RunContext, rec: StepRecorder) -> str:
    """The question made self-contained using the conversation so far."""
    if not history or not needs_thread(question):
        return question
    thread = "\n".join(f"Q: {turn['question']}\nA: {turn['answer']}" for turn in history[-3:])
    reply = ask_model(
        ctx,
        rec,
        lambda model: model.structured(
            render("standalone", conversation=thread, question=question),
            Standalone,
            stage=Step.EXPAND,
            max_tokens=STANDALONE_MAX_TOKENS,
        ),
        stage=Step.EXPAND,
        what="standalone rewrite",
        fallback="used the conversation's keywords",
    )
    if reply is not None:
        return reply.question.strip() or question
    return offline_standalone(question, history)


def _generated_variants(question: str, ctx: RunContext, rec: StepRecorder) -> list[QueryVariant]:
    """Rewrites and query2doc pseudo-documents from the LLM, requested concurrently."""
    config = ctx.settings.expand
    jobs: list[str] = (["rewrites"] if config.rewrites else []) + ["pseudo_doc"] * config.pseudo_docs
    if not jobs:
        return []

    def generate(job: str, model: ChatModel) -> list[QueryVariant]:
        if job == "rewrites":
            reply = model.structured(
                render("rewrite", question=question, n=str(config.rewrites)),
                Rewrites,
                stage=Step.EXPAND,
                max_tokens=REWRITES_REPLY.tokens(config.rewrites),
            )
            return [
                QueryVariant(text=r, kind="rewrite") for r in reply.rewrites[: config.rewrites] if r.strip()
            ]
        text = model.text(
            render("query2doc", question=question), stage=Step.EXPAND, max_tokens=PSEUDO_DOC_MAX_TOKENS
        )
        return [QueryVariant(text=text.strip(), kind="pseudo_doc")] if text.strip() else []

    def run(job: str) -> list[QueryVariant]:
        variants = ask_model(
            ctx,
            rec,
            lambda model: generate(job, model),
            stage=Step.EXPAND,
            what=job,
            fallback="used pseudo-relevance feedback",
        )
        return variants or []

    return [
        v for batch in map_concurrent(run, jobs, max_workers=ctx.settings.llm.max_concurrency) for v in batch
    ]


def _feedback_variants(question: str, ctx: RunContext) -> list[QueryVariant]:
    """Offline expansion: keywords, RM3-style feedback terms, and feedback passages as pseudo-documents."""
    config = ctx.settings.expand
    terms = content_words(question)
    variants: list[QueryVariant] = []
    if terms and len(terms) < len(question.split()):
        variants.append(QueryVariant(text=" ".join(dict.fromkeys(terms)), kind="keywords"))
    index = ctx.index
    vector = ctx.embed_query(question)
    dense = [h.chunk_id for h in index.dense_chunks(vector, config.feedback_k * 2)]
    lexical = [h.chunk_id for h in index.bm25_chunks(question, config.feedback_k * 2)]
    top = ranked(rrf([dense, lexical]))[: config.feedback_k]
    passages = index.chunks(top)
    if not passages:
        return variants
    expansion = _rm3_terms([p.text for p in passages], set(terms), config.expansion_terms)
    if expansion:
        variants.append(QueryVariant(text=f"{question} {' '.join(expansion)}", kind="feedback"))
    for passage in passages[: config.pseudo_docs]:
        variants.append(QueryVariant(text=passage.text, kind="pseudo_doc"))
    return variants


def _rm3_terms(passages: list[str], query_terms: set[str], n: int) -> list[str]:
    """Terms most probable in the feedback passages (rank-weighted), excluding the query's own."""
    weights: dict[str, float] = {}
    for rank, text in enumerate(passages):
        words = [w for w in content_words(text) if len(w) > 2]
        if not words:
            continue
        prior = 1.0 / (rank + 1)
        for word, count in Counter(words).items():
            weights[word] = weights.get(word, 0.0) + prior * count / len(words)
    best = sorted(weights, key=lambda w: -weights[w])
    return [w for w in best if w not in query_terms][:n]
