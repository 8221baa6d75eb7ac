"""``multigrain bench``: ingestion throughput against the raw embedder, and query latency as the corpus grows.

Both benchmarks work in fresh temporary indexes (embedded Chroma), never in the user's index.
"""

from __future__ import annotations

import itertools
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from agents import Agent, ConfigError, Index, Settings, Step
from evaluation.datasets import Dataset, list_doc_files, load_dataset
from evaluation.metrics import percentile
from evaluation.runner import without
from retrieval.embeddings import (
    Embedder,
    EmbedStats,
    LocalModel,
    SpanEmbedder,
    Spans,
    SpanVectors,
    make_embedder,
)
from retrieval.errors import LoaderError
from retrieval.ids import unit_id
from retrieval.index import IngestReport, SentenceVector
from retrieval.loaders import load_file
from retrieval.models import Document
from retrieval.packs import document_packs
from retrieval.store import CollectionName, Metadata

CHUNKS_PER_DOC = 10
SENTENCES_PER_CHUNK = 1
WORDS_PER_SENTENCE = 16
TOPIC_WORDS = 12
TOPIC_SHARE = 0.5
VOCABULARY_SIZE = 5000
UPSERT_CHUNKS = 5000
T = TypeVar("T")
SEARCH_STEPS = (Step.EXPAND, Step.ROUTE, Step.RETRIEVE)
SYNTHETIC_VECTORS = (
    "synthetic, not embedded: each document has a random Gaussian topic vector; chunk vectors are the topic "
    "plus Gaussian noise of norm 0.5, sentence vectors of norm 0.8, profiles of norm 0.3, all L2-normalised; "
    "centroids are the normalised mean of the chunks. Query vectors come from the real ONNX model."
)
SYNTHETIC_TEXT = (
    f"{CHUNKS_PER_DOC} chunks per document, each {SENTENCES_PER_CHUNK} stored sentence(s) of "
    f"{WORDS_PER_SENTENCE} pseudo-words from a fixed {VOCABULARY_SIZE}-word vocabulary, "
    f"{TOPIC_SHARE:.0%} of them drawn from the document's {TOPIC_WORDS} topic words; "
    "each query is 4 topic words of a random document"
)


# ----- ingestion throughput ----------------------------------------------------------------------


class RecordingEmbedder:
    """An Embedder that passes every request on to another one and keeps the texts of each request.

    It pools spans (``embed_spans``, late sentence vectors) whenever the wrapped model can, and shows when
    that model is inside a pass (``in_pass``, the ingest's writer waits for it), so the index embeds and
    writes through it exactly as it would through the model itself.
    """

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.stats = EmbedStats()
        self.requests: list[list[str]] = []
        self.span_requests: list[tuple[list[str], list[list[tuple[int, int]]]]] = []

    def __getattr__(self, name: str) -> Any:
        if name == "in_pass" and isinstance(self._inner, LocalModel):
            return self._inner.in_pass
        if isinstance(self._inner, SpanEmbedder):
            if name == "embed_spans":
                return self._embed_spans
            if name in ("reads_whole", "count_word_pieces"):
                return getattr(self._inner, name)
        raise AttributeError(name)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with the wrapped model, recording the texts and the word pieces it read."""
        self.requests.append(list(texts))
        return self._timed(len(texts), lambda: self._inner.embed_documents(texts))

    def _embed_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> SpanVectors:
        assert isinstance(self._inner, SpanEmbedder)
        inner = self._inner
        self.span_requests.append((list(texts), [list(row) for row in spans]))
        passes_before = inner.stats.span_passes
        result: SpanVectors = self._timed(len(texts), lambda: inner.embed_spans(texts, spans))
        self.stats.late_spans += sum(len(row) for row in spans) - (inner.stats.span_passes - passes_before)
        self.stats.span_passes += inner.stats.span_passes - passes_before
        return result

    def _timed(self, count: int, embed: Callable[[], T]) -> T:
        tokens_before = self._inner.stats.tokens
        started = time.perf_counter()
        result = embed()
        if count:
            tokens = self._inner.stats.tokens - tokens_before
            self.stats.record(texts=count, tokens=tokens, seconds=time.perf_counter() - started)
        self.dim = self._inner.dim
        return result

    def embed_query(self, text: str) -> np.ndarray:
        """The query's vector from the wrapped model (recorded like any other request)."""
        return self.embed_documents([text])[0]


def run_ingest_bench(
    dataset_dir: Path,
    *,
    settings: Settings,
    max_docs: int | None = None,
    repeat: int = 1,
    show: bool = True,
) -> dict[str, Any]:
    """Ingest a dataset into a fresh index, then embed the same texts with the bare model; compare speeds.

    With ``repeat`` above 1 each is timed that many times (a fresh index each time) and the fastest run of
    each counts, as timeit does: on a shared machine other work only ever slows a run down. The ratio to
    the chunks-only pass is taken per round instead (see :func:`bracketed_ratios`), and its median counts:
    this machine's speed drifts by 10-20% within a minute, so the fastest ingest and the fastest chunks-only
    pass, timed minutes apart, compare two different machines."""
    if repeat < 1:
        raise ValueError(f"repeat must be 1 or more, got {repeat}")
    dataset = load_dataset(dataset_dir)
    raw = make_embedder(settings.index.embedding)
    raw.embed_query("warm up the model before anything is timed")
    raw.stats = EmbedStats()
    runs = []
    for _ in range(repeat):
        seconds, report, recorder = _timed_ingest(dataset, settings, max_docs)
        runs.append((seconds, report, recorder, _chunks_only_seconds(raw, recorder)))
    ingest_seconds, report, recorder, _ = min(runs, key=lambda run: run[0])
    raw_seconds = min(_replay(raw, run[2]) for run in runs)
    raw_tokens = raw.stats.tokens // repeat
    chunks_only_by_round = [run[3] for run in runs if run[3] is not None]
    chunks_only = min(chunks_only_by_round, default=None)
    round_ratios = bracketed_ratios([run[0] for run in runs if run[3] is not None], chunks_only_by_round)
    documents = len(report.added) + len(report.replaced)
    ingest_rate = _rate(recorder.stats.tokens, ingest_seconds)
    raw_rate = _rate(raw_tokens, raw_seconds)
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "embedding_model": recorder.model_id,
        "batch_size": settings.index.embedding.batch_size,
        "documents": documents,
        "failed_documents": len(report.failed),
        "chunks": report.chunks,
        "sentences": report.sentences,
        "texts_embedded": recorder.stats.texts,
        "ingest_seconds": ingest_seconds,
        "embed_seconds_in_ingest": recorder.stats.seconds,
        "documents_per_s": _rate(documents, ingest_seconds),
        "chunks_per_s": _rate(report.chunks, ingest_seconds),
        "sentences_per_s": _rate(report.sentences, ingest_seconds),
        "ingest_tokens": recorder.stats.tokens,
        "ingest_tokens_per_s": ingest_rate,
        "raw_seconds": raw_seconds,
        "raw_tokens": raw_tokens,
        "repeat": repeat,
        "raw_tokens_per_s": raw_rate,
        "ratio": ingest_rate / raw_rate if raw_rate else 0.0,
        "sentence_vectors": "late" if recorder.span_requests else "separate",
        "late_sentences": recorder.stats.late_spans,
        "sentence_passes": recorder.stats.span_passes,
        "chunks_only_seconds": chunks_only,
        "ingest_over_chunks_only": statistics.median(round_ratios) if round_ratios else None,
        "ingest_over_chunks_only_by_round": round_ratios,
        "fastest_ingest_over_fastest_chunks_only": ingest_seconds / chunks_only if chunks_only else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if show:
        print(format_ingest_table(result))
    return result


def bracketed_ratios(ingest_seconds: Sequence[float], chunks_only_seconds: Sequence[float]) -> list[float]:
    """Each round's ingest over the chunks-only passes timed just before it (the previous round's) and just
    after it (its own), averaged: a steady drift of the machine's speed over the two cancels. The first
    round has only the pass after it."""
    ratios = []
    for i, seconds in enumerate(ingest_seconds):
        around = chunks_only_seconds[max(i - 1, 0) : i + 1]
        ratios.append(seconds / (sum(around) / len(around)))
    return ratios


def _timed_ingest(
    dataset: Dataset, settings: Settings, max_docs: int | None
) -> tuple[float, IngestReport, RecordingEmbedder]:
    """Seconds to ingest the dataset into a fresh index, its report, and the requests made to the model."""
    recorder = RecordingEmbedder(make_embedder(settings.index.embedding))
    with tempfile.TemporaryDirectory(prefix="multigrain-bench-", ignore_cleanup_errors=True) as folder:
        index = Index(_fresh_index_settings(settings, Path(folder)).index, embedder=recorder)
        started = time.perf_counter()
        report = index.ingest_documents(itertools.islice(dataset_documents(dataset), max_docs))
        return time.perf_counter() - started, report, recorder


def _replay(raw: Embedder, recorder: RecordingEmbedder) -> float:
    """Seconds the bare model takes for every request the ingestion made."""
    started = time.perf_counter()
    for request in recorder.requests:
        raw.embed_documents(request)
    if isinstance(raw, SpanEmbedder):
        for texts, spans in recorder.span_requests:
            raw.embed_spans(texts, spans)
    return time.perf_counter() - started


def _chunks_only_seconds(raw: Embedder, recorder: RecordingEmbedder) -> float | None:
    """Seconds the bare model takes on the chunks alone (known when sentences were pooled from them)."""
    if not recorder.span_requests:
        return None
    stats, raw.stats = raw.stats, EmbedStats()
    started = time.perf_counter()
    for texts, _spans in recorder.span_requests:
        raw.embed_documents(texts)
    seconds = time.perf_counter() - started
    raw.stats = stats
    return seconds


def dataset_documents(dataset: Dataset) -> Iterator[Document]:
    """The dataset's documents as the index loads them: corpus lines, or files with their relative paths."""
    if dataset.corpus_path is not None:
        size = dataset.corpus_path.stat().st_size
        yield from load_file(dataset.corpus_path, doc_id="", max_bytes=size + 1)
        return
    for doc_id, path in list_doc_files(dataset):
        try:
            yield from load_file(path, doc_id=doc_id, max_bytes=path.stat().st_size + 1)
        except LoaderError as exc:
            print(f"multigrain bench: skipped {exc.path}: {exc.reason}", file=sys.stderr)


def format_ingest_table(result: dict[str, Any]) -> str:
    """The ingestion benchmark as an aligned two-column table."""
    rows = [
        ("dataset", str(result["dataset"])),
        (
            "documents / chunks / sentences",
            f"{result['documents']} / {result['chunks']} / {result['sentences']}",
        ),
        (
            "ingest seconds (embedding share)",
            f"{result['ingest_seconds']:.1f} ({result['embed_seconds_in_ingest']:.1f} embedding)",
        ),
        ("documents/s", f"{result['documents_per_s']:.1f}"),
        ("chunks/s", f"{result['chunks_per_s']:.1f}"),
        ("sentences/s", f"{result['sentences_per_s']:.1f}"),
        ("ingest tokens/s", f"{result['ingest_tokens_per_s']:.0f} ({result['ingest_tokens']} word pieces)"),
        ("raw embedder tokens/s", f"{result['raw_tokens_per_s']:.0f} ({result['raw_tokens']} word pieces)"),
        ("ingest / raw", f"{result['ratio']:.2f}"),
        ("timed runs (fastest kept)", str(result["repeat"])),
        (
            "sentence vectors (pooled / own pass)",
            f"{result['sentence_vectors']} ({result['late_sentences']} / {result['sentence_passes']})",
        ),
        ("chunks-only raw model seconds", _optional(result["chunks_only_seconds"], "{:.1f}")),
        ("ingest / chunks-only, median of rounds", _optional(result["ingest_over_chunks_only"], "{:.2f}")),
        (
            "each round (over the passes before and after)",
            _optional(" ".join(f"{r:.2f}" for r in result["ingest_over_chunks_only_by_round"]) or None, "{}"),
        ),
        (
            "fastest ingest / fastest chunks-only",
            _optional(result["fastest_ingest_over_fastest_chunks_only"], "{:.2f}"),
        ),
        ("peak memory MB", f"{result['peak_rss_mb']:.0f}"),
    ]
    return _table(("ingestion", ""), rows)


# ----- query latency -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticCorpus:
    """What was written into a synthetic index, and questions aimed at its documents."""

    documents: int
    chunks: int
    sentences: int
    build_seconds: float
    questions: list[str]


def run_query_bench(
    *, settings: Settings, sizes: Sequence[int] = (1000, 10000, 100000), queries: int = 20, show: bool = True
) -> dict[str, Any]:
    """Offline query latency, routed and unrouted, over synthetic corpora of each size (in chunks)."""
    if not sizes or min(sizes) < CHUNKS_PER_DOC or queries < 1:
        raise ConfigError(
            f"the query benchmark needs sizes of at least {CHUNKS_PER_DOC} chunks and one query or more "
            f"(got sizes {list(sizes)}, queries {queries})"
        )
    embedder = make_embedder(settings.index.embedding.model_copy(update={"backend": "onnx"}))
    by_size: dict[str, dict[str, Any]] = {}
    for size in sizes:
        if show:
            print(
                f"query bench: building {size:,} synthetic chunks, then timing {queries} queries",
                file=sys.stderr,
            )
        by_size[str(size)] = _bench_size(settings, embedder, chunks=size, queries=queries)
    result: dict[str, Any] = {
        "sizes": by_size,
        "queries": queries,
        "vectors": SYNTHETIC_VECTORS,
        "text": SYNTHETIC_TEXT,
        "pipeline": "offline Agent.ask: expand, route, retrieve, rerank, answer, verify; search: first 3",
        "scaling": _scaling(by_size),
    }
    if show:
        print(format_query_table(result))
    return result


def _bench_size(settings: Settings, embedder: Embedder, *, chunks: int, queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="multigrain-qbench-", ignore_cleanup_errors=True) as folder:
        bench_settings = _fresh_index_settings(settings, Path(folder))
        index = Index(bench_settings.index, embedder=embedder)
        corpus = build_synthetic_index(index, chunks=chunks, questions=queries, seed=chunks)
        return {
            "documents": corpus.documents,
            "chunks": corpus.chunks,
            "sentences": corpus.sentences,
            "build_seconds": corpus.build_seconds,
            "routed": time_questions(bench_settings, index, corpus.questions),
            "unrouted": time_questions(without(bench_settings, "route"), index, corpus.questions),
            "peak_rss_mb": peak_rss_mb(),
        }


def time_questions(settings: Settings, index: Index, questions: Sequence[str]) -> dict[str, float]:
    """p50/p95 of the offline pipeline, of its search steps and p50 of each step, after a warm-up question."""
    agent = Agent(settings, index=index)
    agent.ask(questions[0])
    totals: list[float] = []
    by_step: dict[str, list[float]] = {}
    for question in questions:
        started = time.perf_counter()
        answer = agent.ask(question)
        totals.append(time.perf_counter() - started)
        steps: dict[str, float] = {}
        for entry in answer.trace:
            if not entry["skipped"]:
                steps[entry["step"]] = steps.get(entry["step"], 0.0) + entry["seconds"]
        steps["search"] = sum(steps.get(step, 0.0) for step in SEARCH_STEPS)
        for step, seconds in steps.items():
            by_step.setdefault(step, []).append(seconds)
    timings = {"p50": percentile(totals, 50), "p95": percentile(totals, 95)}
    timings["search_p95"] = percentile(by_step["search"], 95)
    return timings | {f"{step}_p50": percentile(seconds, 50) for step, seconds in by_step.items()}


def _scaling(by_size: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if len(by_size) < 2:
        return {}
    smallest, largest = by_size[min(by_size, key=int)], by_size[max(by_size, key=int)]
    scaling: dict[str, Any] = {}
    for mode in ("routed", "unrouted"):
        factor = largest[mode]["p50"] / smallest[mode]["p50"] if smallest[mode]["p50"] else 0.0
        scaling[mode] = factor
        relation = f"within {factor:.1f}x of" if factor >= 1 else f"{factor:.1f}x (faster than)"
        scaling[f"{mode}_statement"] = (
            f"{mode}: p50 latency at {largest['chunks']:,} chunks is {relation} "
            f"that at {smallest['chunks']:,} chunks"
        )
    return scaling


def format_query_table(result: dict[str, Any]) -> str:
    """The query benchmark: one row per corpus size, p50/p95 in milliseconds per mode."""
    rows = [
        (
            f"{int(size):,}",
            f"{row['build_seconds']:.0f}",
            *(
                f"{row[mode]['p50'] * 1000:.0f} / {row[mode]['p95'] * 1000:.0f} "
                f"(search {row[mode]['search_p50'] * 1000:.0f})"
                for mode in ("routed", "unrouted")
            ),
            f"{row['peak_rss_mb']:.0f}",
        )
        for size, row in result["sizes"].items()
    ]
    header = ("chunks", "build s", "routed p50/p95 ms", "unrouted p50/p95 ms", "peak MB")
    lines = [_table(header, rows), f"vectors: {result['vectors']}", f"text: {result['text']}"]
    scaling = result["scaling"]
    lines += [scaling[key] for key in ("routed_statement", "unrouted_statement") if key in scaling]
    return "\n".join(lines)


# ----- the synthetic corpus ----------------------------------------------------------------------


def build_synthetic_index(index: Index, *, chunks: int, questions: int, seed: int) -> SyntheticCorpus:
    """Write ``chunks`` synthetic chunks (10 per document) straight into the index's store, then BM25."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    vocabulary = _vocabulary(np.random.default_rng(0))
    documents = max(1, chunks // CHUNKS_PER_DOC)
    topics = rng.choice(len(vocabulary), size=(documents, TOPIC_WORDS))
    per_batch = max(1, UPSERT_CHUNKS // CHUNKS_PER_DOC)
    sentences = 0
    # Two writers keep both cores busy: each collection's upsert is a task, and up to two batches are in
    # flight, so one batch's chunks are written beside the previous batch's sentence packs.
    in_flight: deque[list[Future[None]]] = deque()
    with ThreadPoolExecutor(max_workers=2) as writers:
        for first in range(0, documents, per_batch):
            numbers = range(first, min(first + per_batch, documents))
            batch = [_synthetic_document(d, vocabulary[topics[d]], vocabulary, rng) for d in numbers]
            rows = _batch_rows(batch, rng, dim=index.embedder.dim)
            sentences += sum(len(item.sentences) for item in batch)
            if len(in_flight) == 2:
                _wait(in_flight.popleft())
            in_flight.append([writers.submit(_upsert, index, name, row) for name, row in rows.items()])
        while in_flight:
            _wait(in_flight.popleft())
    index.side.rebuild()  # the store was written directly, so BM25 is rebuilt by hand
    asked = rng.choice(documents, size=questions)
    texts = [
        f"What about {' '.join(rng.choice(vocabulary[topics[d]], size=4, replace=False))}?" for d in asked
    ]
    return SyntheticCorpus(
        documents, documents * CHUNKS_PER_DOC, sentences, time.perf_counter() - started, texts
    )


def _wait(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < VOCABULARY_SIZE:
        words.add("".join(rng.choice(syllables, size=int(rng.integers(2, 4)))))
    return np.array(sorted(words))


@dataclass(frozen=True)
class _SyntheticDocument:
    document: Document
    chunks: list[tuple[int, int]]
    sentences: list[tuple[int, int]]
    topic: list[str]


def _synthetic_document(
    number: int, topic: np.ndarray, vocabulary: np.ndarray, rng: np.random.Generator
) -> _SyntheticDocument:
    count = CHUNKS_PER_DOC * SENTENCES_PER_CHUNK
    from_topic = rng.random((count, WORDS_PER_SENTENCE)) < TOPIC_SHARE
    words = np.where(
        from_topic,
        topic[rng.integers(0, len(topic), size=(count, WORDS_PER_SENTENCE))],
        vocabulary[rng.integers(0, len(vocabulary), size=(count, WORDS_PER_SENTENCE))],
    )
    sentence_texts = [" ".join(row).capitalize() + "." for row in words]
    text = ""
    sentence_spans: list[tuple[int, int]] = []
    chunk_spans: list[tuple[int, int]] = []
    for c in range(CHUNKS_PER_DOC):
        text += "\n\n" if text else ""
        chunk_start = len(text)
        for sentence in sentence_texts[c * SENTENCES_PER_CHUNK : (c + 1) * SENTENCES_PER_CHUNK]:
            text += " " if len(text) > chunk_start else ""
            sentence_spans.append((len(text), len(text) + len(sentence)))
            text += sentence
        chunk_spans.append((chunk_start, len(text)))
    title = f"{topic[0].capitalize()} {topic[1]} {topic[2]}"
    document = Document(doc_id=f"synthetic-{number:06d}", title=title, text=text, source="synthetic")
    return _SyntheticDocument(document, chunk_spans, sentence_spans, [str(w) for w in topic])


def _noisy(topic: np.ndarray, rows: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    jitter = rng.standard_normal((rows, topic.size)).astype(np.float32) * (noise / np.sqrt(topic.size))
    vectors = topic[None, :] + jitter
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class _Rows:
    """Items bound for one collection."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadatas: list[Metadata] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)

    def add(self, item_id: str, text: str, metadata: Metadata) -> None:
        self.ids.append(item_id)
        self.texts.append(text)
        self.metadatas.append(metadata)


def _upsert(index: Index, name: CollectionName, rows: _Rows) -> None:
    vectors = np.concatenate(rows.vectors)
    index.store.upsert(name, ids=rows.ids, texts=rows.texts, metadatas=rows.metadatas, vectors=vectors)


def _batch_rows(
    batch: list[_SyntheticDocument], rng: np.random.Generator, *, dim: int
) -> dict[CollectionName, _Rows]:
    """A batch's items for the four collections, with the metadata keys ``Index`` writes."""
    rows: dict[CollectionName, _Rows] = {
        name: _Rows() for name in ("sentences", "chunks", "centroids", "documents")
    }
    for item in batch:
        doc = item.document
        topic = rng.standard_normal(dim).astype(np.float32)
        topic /= np.linalg.norm(topic)
        base: Metadata = {"doc_id": doc.doc_id, "content_hash": doc.content_hash}
        unit_base: Metadata = {**base, "section": "", "parent_id": unit_id(doc.doc_id, "section", 0)}
        chunk_vectors = _noisy(topic, len(item.chunks), 0.5, rng)
        sentences = [
            SentenceVector(
                unit_id(doc.doc_id, "sentence", i), doc.doc_id, doc.text[start:end], start, end, vector
            )
            for i, ((start, end), vector) in enumerate(
                zip(item.sentences, _noisy(topic, len(item.sentences), 0.8, rng), strict=True)
            )
        ]
        for ordinal, (start, end) in enumerate(item.chunks):
            meta: Metadata = {**unit_base, "start": start, "end": end, "ordinal": ordinal, "title": doc.title}
            rows["chunks"].add(unit_id(doc.doc_id, "chunk", ordinal), doc.text[start:end], meta)
        held = [s for s in sentences if any(start <= s.start and s.end <= end for start, end in item.chunks)]
        center = _noisy(chunk_vectors.mean(axis=0), 1, 0.0, rng)
        for pack_id, metadata in document_packs(doc.doc_id, held):
            rows["sentences"].add(pack_id, "", metadata)
            rows["sentences"].vectors.append(center)
        rows["chunks"].vectors.append(chunk_vectors)
        rows["centroids"].add(doc.doc_id, doc.title, base)
        rows["centroids"].vectors.append(center)
        rows["documents"].add(doc.doc_id, doc.text, _profile_metadata(item, base))
        rows["documents"].vectors.append(_noisy(topic, 1, 0.3, rng))
    return rows


def _profile_metadata(item: _SyntheticDocument, base: Metadata) -> Metadata:
    doc = item.document
    return {
        **base,
        "title": doc.title,
        "source": doc.source,
        "summary": " ".join(doc.text[start:end] for start, end in item.sentences[:2]),
        "keywords": ", ".join(item.topic),
        "chunks": len(item.chunks),
        "sentences": len(item.sentences),
        "pages": 0,
        "chars": len(doc.text),
        "spans": json.dumps({"sections": [], "pages": []}),
    }


# ----- shared helpers ----------------------------------------------------------------------------


def _fresh_index_settings(settings: Settings, home: Path) -> Settings:
    """Settings for a throwaway index under ``home``: embedded Chroma, no LLM (the offline pipeline)."""
    index = settings.index.model_copy(update={"home": home, "chroma_host": None})
    llm = settings.llm.model_copy(update={"base_url": None, "api_key": None})
    return settings.model_copy(update={"home": home, "chroma_host": None, "index": index, "llm": llm})


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _optional(value: float | str | None, form: str) -> str:
    return "n/a (sentences embedded separately)" if value is None else form.format(value)


def _rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)
