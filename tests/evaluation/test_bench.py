"""The benchmarks on tiny inputs: ingestion against the raw embedder, query latency on synthetic indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.errors import ConfigError
from evaluation.bench import (
    RecordingEmbedder,
    bracketed_ratios,
    build_synthetic_index,
    run_ingest_bench,
    run_query_bench,
)
from retrieval.config import IndexConfig
from retrieval.index import Index
from tests.evaluation.test_runner import DOCS, offline_settings, write_dataset


@pytest.mark.parametrize(("max_docs", "documents"), [(None, len(DOCS)), (2, 2)])
def test_ingest_bench_compares_the_same_work(
    tmp_path: Path, max_docs: int | None, documents: int, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = write_dataset(tmp_path / "tiny")
    result = run_ingest_bench(dataset, settings=offline_settings(tmp_path / "home"), max_docs=max_docs)
    assert result["documents"] == documents
    assert result["chunks"] >= documents and result["sentences"] > result["chunks"]
    assert result["ingest_tokens"] == result["raw_tokens"] > 0
    assert result["ratio"] > 0
    assert result["ingest_tokens_per_s"] > 0 and result["raw_tokens_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert not (tmp_path / "home").exists()  # a fresh temporary index, not the user's
    printed = capsys.readouterr().out
    assert "ingest / raw" in printed and f"{result['ratio']:.2f}" in printed


def test_ingest_bench_keeps_the_fastest_of_repeated_runs_of_the_same_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = write_dataset(tmp_path / "tiny")
    once = run_ingest_bench(dataset, settings=offline_settings(tmp_path / "home"), show=False)
    twice = run_ingest_bench(dataset, settings=offline_settings(tmp_path / "home"), repeat=2)
    assert twice["repeat"] == 2
    assert twice["ingest_tokens"] == twice["raw_tokens"] == once["raw_tokens"]
    assert twice["chunks"] == once["chunks"] and twice["sentences"] == once["sentences"]
    ratios = twice["ingest_over_chunks_only_by_round"]
    assert len(ratios) == 2 and twice["ingest_over_chunks_only"] == pytest.approx(sum(ratios) / 2)
    assert "timed runs (fastest kept)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="repeat must be 1 or more"):
        run_ingest_bench(dataset, settings=offline_settings(tmp_path / "home"), repeat=0)


def test_each_rounds_ratio_is_over_the_chunks_only_passes_timed_just_before_and_after_it() -> None:
    slowing_down = [10.0, 12.0, 14.0]
    ingests = [11.0, 13.0, 15.0]
    assert bracketed_ratios(ingests, slowing_down) == pytest.approx([11 / 10, 13 / 11, 15 / 13])


def test_recording_embedder_passes_vectors_through_and_counts_word_pieces(embedder: Any) -> None:
    recorder = RecordingEmbedder(embedder)
    texts = ["Worker bees perform a waggle dance.", "Basalt lava is runny."]
    vectors = recorder.embed_documents(texts)
    query = recorder.embed_query("waggle dance")
    assert np.allclose(vectors, embedder.embed_documents(texts), atol=1e-5)
    assert np.allclose(query, embedder.embed_query("waggle dance"), atol=1e-5)
    assert recorder.requests == [texts, ["waggle dance"]]
    assert recorder.stats.texts == 3
    assert recorder.stats.tokens == sum(embedder.count_tokens([*texts, "waggle dance"]))
    assert recorder.in_pass is embedder.in_pass  # the ingest's writer sees the model's passes through it


def test_synthetic_index_is_consistent_and_searchable(tmp_path: Path, embedder: Any) -> None:
    index = Index(IndexConfig(home=tmp_path), embedder=embedder)
    corpus = build_synthetic_index(index, chunks=200, questions=4, seed=7)
    assert (corpus.documents, corpus.chunks) == (20, 200)
    assert index.stats()["chunks"] == 200 and index.stats()["sentences"] == corpus.sentences
    assert len(index.documents()) == 20
    hit = index.bm25_chunks(corpus.questions[0], 1)[0]
    assert index.document(hit.doc_id).text[hit.start : hit.end] == hit.text
    words = set(corpus.questions[0].removeprefix("What about ").removesuffix("?").split())
    assert words & set(hit.text.lower().replace(".", "").split())
    vector = index.store.get("chunks", ids=[hit.chunk_id], with_vectors=True)[0].vector
    assert vector is not None
    neighbours = index.dense_chunks(vector, 10)
    assert sum(h.doc_id == hit.doc_id for h in neighbours) >= 8  # a document's chunks share its topic vector


def test_query_bench_times_both_modes_at_every_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_query_bench(settings=offline_settings(tmp_path / "home"), sizes=(200, 400), queries=3)
    assert list(result["sizes"]) == ["200", "400"]
    for size, row in result["sizes"].items():
        assert row["chunks"] == int(size) and row["documents"] == int(size) // 10
        for mode in ("routed", "unrouted"):
            assert 0 < row[mode]["search_p50"] <= row[mode]["p50"] <= row[mode]["p95"]
    routed = result["sizes"]["400"]["routed"]["p50"] / result["sizes"]["200"]["routed"]["p50"]
    assert result["scaling"]["routed"] == pytest.approx(routed)
    assert "at 400 chunks" in result["scaling"]["routed_statement"]
    assert f"{routed:.1f}x" in result["scaling"]["routed_statement"]
    assert {"route_p50", "retrieve_p50", "rerank_p50"} <= set(result["sizes"]["200"]["routed"])
    assert "route_p50" not in result["sizes"]["200"]["unrouted"]
    assert "synthetic" in result["vectors"]
    printed = capsys.readouterr().out
    assert "routed p50/p95 ms" in printed and result["scaling"]["unrouted_statement"] in printed


@pytest.mark.parametrize(("sizes", "queries"), [((5,), 3), ((), 3), ((200,), 0)])
def test_query_bench_refuses_sizes_and_counts_it_cannot_build(
    tmp_path: Path, sizes: tuple[int, ...], queries: int
) -> None:
    with pytest.raises(ConfigError, match="at least 10 chunks"):
        run_query_bench(settings=offline_settings(tmp_path), sizes=sizes, queries=queries)
