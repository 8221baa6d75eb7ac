"""Retrieve (fine grain): chunks inside the routed documents, dense and BM25 for every variant, fused.

Then one hop along links: documents that the question or the best passages name by title join the
candidates with their chunk closest to the question, since a bridge passage ("... starring Halina
Reijn") often shares no words with the question it helps answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from agents.context import RunContext, record_step
from agents.nodes._queries import merge_variants
from agents.state import AgentState
from agents.steps import Step
from retrieval.fusion import ranked, rrf
from retrieval.hits import ChunkHit, passage_from_hit
from retrieval.index import Index

LINK_SOURCES = 3
"""How many of the best fused passages may add the documents they name."""


def retrieve_chunks(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Search chunks with every variant and method, restricted to the routed documents, and fuse the lists."""
    ctx = runtime.context
    config = ctx.settings.retrieve
    index = ctx.index
    routed = state.get("routed", [])
    kept = [d["doc_id"] for d in routed if d["kept"]]
    doc_ids = kept if routed else None
    with record_step(
        Step.RETRIEVE, ctx, documents=len(kept) if routed else "all", variants=len(state["variants"])
    ) as rec:
        repeats = ctx.settings.expand.question_repeats
        query = merge_variants(state["variants"], ctx.embed, question_repeats=repeats)
        lists: dict[str, list[ChunkHit]] = {}
        searches = [("merged", query.lexical, query.vector)] + [
            (f"{v['kind']}:{i}", v["text"], vector)
            for i, (v, vector) in enumerate(zip(state["variants"], query.variant_vectors, strict=True))
        ]
        if config.dense:
            vectors = np.stack([vector for _, _, vector in searches])
            dense = index.dense_chunks_many(vectors, config.per_variant_k, doc_ids=doc_ids)
            lists |= {f"{label}/dense": found for (label, _, _), found in zip(searches, dense, strict=True)}
        if config.bm25:
            for label, text, _ in searches:
                lists[f"{label}/bm25"] = index.bm25_chunks(text, config.per_variant_k, doc_ids=doc_ids)
        hits = {h.chunk_id: h for found in lists.values() for h in found}
        rankings = [[h.chunk_id for h in found] for found in lists.values()]
        signal = ctx.signal_weights()
        weights = [signal.dense if label.endswith("/dense") else signal.bm25 for label in lists]
        if routed:
            rankings.append(_by_document_rank(list(hits.values()), [d["doc_id"] for d in routed], rankings))
            weights.append(1.0)
        fused = rrf(rankings, k=config.rrf_k, weights=weights)
        chosen = _deduplicated([hits[c] for c in ranked(fused)])[: config.k]
        if config.neighbours:
            chosen = _with_neighbours(chosen, index)
        question = state.get("standalone") or state["question"]
        linked = _linked(question, chosen, query.vector, index, limit=config.linked_docs)
        passages = [passage_from_hit(h, fused.get(h.chunk_id, 0.0)) for h in chosen + [h for h, _ in linked]]
        rec.outputs = {
            "passages": [[p["chunk_id"], round(p["score"], 5)] for p in passages],
            "lists": len(lists),
            "weights": {"bm25": signal.bm25, "dense": signal.dense},
            "linked": [{"chunk_id": h.chunk_id, "named_by": by} for h, by in linked],
        }
    by_variant = {label: [h.chunk_id for h in found[:10]] for label, found in lists.items()}
    return {"retrieved": passages, "retrieved_by_variant": by_variant, "trace": [rec.entry]}


def _by_document_rank(hits: list[ChunkHit], doc_order: list[str], rankings: list[list[str]]) -> list[str]:
    """Chunks ordered by their document's routing rank, then by their best rank in any list."""
    doc_rank = {d: i for i, d in enumerate(doc_order)}
    best: dict[str, int] = {}
    for ranking in rankings:
        for i, chunk_id in enumerate(ranking):
            best[chunk_id] = min(best.get(chunk_id, i), i)
    ordered = sorted(hits, key=lambda h: (doc_rank.get(h.doc_id, len(doc_rank)), best.get(h.chunk_id, 0)))
    return [h.chunk_id for h in ordered]


def _linked(
    question: str, chosen: list[ChunkHit], vector: np.ndarray, index: Index, *, limit: int
) -> list[tuple[ChunkHit, str]]:
    """Up to ``limit`` documents named by the question or the top passages and not yet among the
    candidates, each by its chunk closest to the query, with what named it."""
    if limit == 0:
        return []
    have = {h.doc_id for h in chosen}
    named: dict[str, str] = {}
    for source, text in [("question", question)] + [(h.chunk_id, h.text) for h in chosen[:LINK_SOURCES]]:
        for doc_id in index.documents_named_in(text, exclude=have):
            named.setdefault(doc_id, source)
    return [(hit, named[hit.doc_id]) for hit in index.nearest_chunk_of_each(vector, list(named)[:limit])]


def _deduplicated(hits: list[ChunkHit]) -> list[ChunkHit]:
    """Drop chunks whose text repeats one already kept (the same passage in two files)."""
    seen: set[str] = set()
    kept = []
    for hit in hits:
        key = " ".join(hit.text.lower().split())
        if key not in seen:
            seen.add(key)
            kept.append(hit)
    return kept


def _with_neighbours(hits: list[ChunkHit], index: Any) -> list[ChunkHit]:
    """Each hit followed by the chunks next to it, without repeats."""
    out: dict[str, ChunkHit] = {}
    for hit in hits:
        out.setdefault(hit.chunk_id, hit)
        for neighbour in index.neighbours(hit):
            out.setdefault(neighbour.chunk_id, neighbour)
    return list(out.values())
