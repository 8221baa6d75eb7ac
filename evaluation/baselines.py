"""Baseline retrievers over the same index chunks as the agent, without routing, expansion or reranking.

They show what the agent's stages add: BM25 alone, dense search alone, and the two fused by reciprocal
rank (a common hybrid). Each returns the top ``k`` chunks for the question text as it was asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from agents import Index
from evaluation.datasets import Query
from evaluation.metrics import passage_metrics, percentile
from retrieval.fusion import ranked, rrf
from retrieval.index import ChunkHit

BASELINE_K = 10
HYBRID_RRF_K = 60

Searcher = Callable[[Index, str, int], list[ChunkHit]]


def bm25_search(index: Index, text: str, k: int) -> list[ChunkHit]:
    """The k best chunks by BM25 over the whole corpus."""
    return index.bm25_chunks(text, k)


def dense_search(index: Index, text: str, k: int) -> list[ChunkHit]:
    """The k chunks nearest to the question's embedding, over the whole corpus."""
    return index.dense_chunks(index.embedder.embed_query(text), k)


def hybrid_search(index: Index, text: str, k: int) -> list[ChunkHit]:
    """BM25's and dense search's top k fused by reciprocal rank (k=60), best k kept."""
    lexical, dense = bm25_search(index, text, k), dense_search(index, text, k)
    hits = {hit.chunk_id: hit for hit in [*lexical, *dense]}
    fused = rrf([[hit.chunk_id for hit in lexical], [hit.chunk_id for hit in dense]], k=HYBRID_RRF_K)
    return [hits[chunk_id] for chunk_id in ranked(fused)[:k]]


BASELINES: dict[str, Searcher] = {"bm25": bm25_search, "dense": dense_search, "hybrid": hybrid_search}


def run_baseline(
    index: Index, queries: Sequence[Query], search: Searcher, *, k: int = BASELINE_K
) -> dict[str, float]:
    """Passage metrics of one baseline over the queries, with its search latency p50 and p95."""
    ranked_hits: dict[str, list[ChunkHit]] = {}
    seconds: list[float] = []
    for query in queries:
        started = time.perf_counter()
        ranked_hits[query.query_id] = search(index, query.text, k)
        seconds.append(time.perf_counter() - started)
    metrics = passage_metrics(ranked_hits, queries)
    if seconds:
        metrics["latency_p50"] = percentile(seconds, 50)
        metrics["latency_p95"] = percentile(seconds, 95)
    return metrics


def run_baselines(
    index: Index, queries: Sequence[Query], *, k: int = BASELINE_K
) -> dict[str, dict[str, float]]:
    """Metrics of every baseline, by system name."""
    return {name: run_baseline(index, queries, search, k=k) for name, search in BASELINES.items()}
