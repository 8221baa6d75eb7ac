"""Writing documents into the store: the write lock, the journal, and the load → chunk → embed → write
pipeline, following the write protocol described in :mod:`retrieval.index`."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from retrieval.catalog import discard_catalog, stored_catalog, write_catalog
from retrieval.chunking import ChunkFits, chunk_document
from retrieval.config import IndexConfig
from retrieval.embeddings import Embedder, SpanEmbedder, pass_signal, pools_sentences
from retrieval.errors import IndexBusyError, LoaderError
from retrieval.hits import IngestReport, SentenceVector, unit_reading
from retrieval.journal import JOURNAL_FILE, Journal
from retrieval.loaders import corpus_document_id, iter_files, load_file, resolved_location
from retrieval.models import ChunkedDocument, Document, Span, Unit
from retrieval.packs import document_packs
from retrieval.profiles import centroid, keywords, summarize
from retrieval.side_indexes import SideIndexCache, stored_hashes
from retrieval.store import COLLECTIONS, ChromaStore, CollectionName, Metadata, Record
from retrieval.turns import WriterTurns, lower_thread_priority

BATCH_CHUNKS = 64
T = TypeVar("T")
ProgressCallback = Callable[[int, int, str], None]
_WRITE_ORDER: tuple[CollectionName, ...] = ("sentences", "chunks", "centroids", "documents")
_Row = tuple[str, str, Metadata, np.ndarray]


def document_id(path: Path, base: Path | None = None) -> str:
    """A file's document id: its resolved absolute location, so one file is one document wherever it
    was named from.

    ``base`` is only for dataset layouts that define ids as paths relative to the dataset folder (the
    evaluation's ``docs/`` datasets); a file outside ``base`` keeps its absolute id.
    """
    location = resolved_location(path)
    if base is not None:
        try:
            return location.relative_to(resolved_location(base)).as_posix()
        except ValueError:
            pass
    return location.as_posix()


def embedding_text(title: str, section_path: tuple[str, ...], text: str) -> str:
    """A chunk as it is embedded: with its document title and section as context."""
    header = [title] + [part for part in section_path if part and part != title]
    return "\n".join(header + [text])


def chunk_fits(embedder: Embedder, doc: Document) -> ChunkFits | None:
    """Whether the embedder reads a chunk of ``doc`` whole; None when it cannot tell."""
    if not isinstance(embedder, SpanEmbedder):
        return None
    # Learns the words of the whole document in one batch, before the chunker asks about its pieces.
    embedder.count_word_pieces(f"{doc.title}\n{doc.text}")
    return lambda section_path, text: embedder.reads_whole(embedding_text(doc.title, section_path, text))


class Ingester:
    """Adds, replaces and removes documents in one store, safely against kills and other writers."""

    def __init__(
        self,
        config: IndexConfig,
        store: ChromaStore,
        side: SideIndexCache,
        *,
        embedder: Callable[[], Embedder],
    ) -> None:
        self.config = config
        self.store = store
        self._side = side
        self._embedder = embedder
        self._journal = Journal(config.home / JOURNAL_FILE)

    @contextmanager
    def _write_lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        lock = FileLock(str(self.config.home / "write.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(f"another multigrain process is writing this index ({self.config.home}); waiting…")
            try:
                lock.acquire(timeout=self.config.lock_timeout_s)
            except Timeout as exc:
                raise IndexBusyError(
                    f"another multigrain process has been writing {self.config.home} for over "
                    f"{self.config.lock_timeout_s:.0f}s; try again when it has finished"
                ) from exc
        try:
            self._recover()
            yield
        finally:
            lock.release()

    def _recover(self) -> None:
        """Undo the writes of a process that was killed half-way."""
        pending = self._journal.pending()
        if pending:
            discard_catalog(self.config)
        for doc_id in pending:
            self._delete_everywhere(doc_id)
        self._journal.done(pending)

    def _publish(self) -> None:
        """Rebuild the side indexes and save the catalog beside their new marker (see retrieval.catalog)."""
        side = self._side.rebuild()
        write_catalog(self.config, stored_catalog(self.store), marker=side.fingerprint)

    def _delete_everywhere(self, doc_id: str) -> None:
        for name in COLLECTIONS:
            self.store.delete(name, {"doc_id": doc_id})

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        base: Path | None = None,
        progress: ProgressCallback | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Add new files, replace changed ones and skip unchanged ones; bad files are reported, not fatal.

        A file's id is its absolute location, and a .jsonl corpus line's id is its file's id and its
        ``_id`` (see :func:`document_id`). With ``base``, ids are as a dataset layout defines them instead:
        a file's path relative to ``base``, a corpus line's bare ``_id``.
        """
        report = IngestReport()
        files = list(iter_files(paths, include=include, exclude=exclude, on_error=report.fail))
        max_bytes = int(self.config.max_file_mb * 1024 * 1024)

        def documents() -> Iterator[tuple[int, Document | None]]:
            for i, path in enumerate(files):
                file_id = document_id(path, base)
                try:
                    for doc in load_file(path, doc_id=file_id, max_bytes=max_bytes):
                        if base is None and "corpus" in doc.metadata:
                            doc = replace(doc, doc_id=corpus_document_id(file_id, doc.doc_id))
                        yield i, doc
                except LoaderError as exc:
                    report.fail(exc)
                    yield i, None

        def advance(position: int) -> None:
            if progress is not None:
                progress(position + 1, len(files), str(files[position]))

        return self._ingest(documents(), report, on_wait=on_wait, advance=advance)

    def ingest_documents(
        self, documents: Iterable[Document], *, on_wait: Callable[[str], None] | None = None
    ) -> IngestReport:
        """Ingest documents that were loaded already (a corpus, a test fixture)."""
        return self._ingest(enumerate(documents), IngestReport(), on_wait=on_wait, advance=lambda _: None)

    def _ingest(
        self,
        documents: Iterable[tuple[int, Document | None]],
        report: IngestReport,
        *,
        on_wait: Callable[[str], None] | None,
        advance: Callable[[int], None],
    ) -> IngestReport:
        """Load and cut documents in a thread ahead of the embedding, write batches in another thread (at
        the lowest CPU priority, in the turns :mod:`retrieval.turns` gives it)."""
        started = time.perf_counter()
        turns = WriterTurns()
        with (
            self._write_lock(on_wait),
            ThreadPoolExecutor(max_workers=1, initializer=lower_thread_priority) as writer,
        ):
            stored = stored_hashes(self.store)
            batch: list[ChunkedDocument] = []
            last_position = position = -1
            pending_write: Future[None] | None = None
            for position, item in _prefetch(self._changed(documents, stored, report)):
                if item is not None:
                    batch.append(item)
                if sum(len(c.chunks) for c in batch) >= BATCH_CHUNKS:
                    pending_write = self._flush(batch, writer, pending_write, report, set(stored), turns)
                    batch = []
                if not batch:
                    for done in range(last_position + 1, position + 1):
                        advance(done)
                    last_position = position
            for part in _halves(batch):
                pending_write = self._flush(part, writer, pending_write, report, set(stored), turns)
            if pending_write is not None:
                with turns.waiting():
                    pending_write.result()
            for done in range(last_position + 1, position + 1):
                advance(done)
            if report.added or report.replaced:
                self._publish()
        report.seconds = time.perf_counter() - started
        return report

    def _changed(
        self, documents: Iterable[tuple[int, Document | None]], stored: dict[str, str], report: IngestReport
    ) -> Iterator[tuple[int, ChunkedDocument | None]]:
        """Each document cut into units when new or changed; None for unchanged, duplicate or failed ones.

        Chunks are cut to the model's window, so the model is loaded here, by the first changed document
        (before any reaches the embedding), and not at all when nothing changed."""
        seen: set[str] = set()
        for position, doc in documents:
            if doc is None:
                yield position, None
                continue
            if doc.doc_id in seen:
                report.failed.append((doc.source, f"duplicate document id {doc.doc_id!r}"))
                yield position, None
                continue
            seen.add(doc.doc_id)
            report.notes.extend((doc.source, note) for note in doc.notes)
            old_hash = stored.get(doc.doc_id)
            if old_hash == doc.content_hash:
                report.unchanged.append(doc.doc_id)
                yield position, None
                continue
            (report.replaced if old_hash else report.added).append(doc.doc_id)
            fits = chunk_fits(self._embedder(), doc)
            yield position, chunk_document(doc, self.config.chunking, fits=fits)

    def _flush(
        self,
        batch: list[ChunkedDocument],
        writer: ThreadPoolExecutor,
        previous: Future[None] | None,
        report: IngestReport,
        stored: set[str],
        turns: WriterTurns,
    ) -> Future[None]:
        """Embed a batch here while the writer thread stores the previous one."""
        rows = self._embed_batch(batch)
        if previous is not None:
            with turns.waiting():
                previous.result()
        report.chunks += sum(len(c.chunks) for c in batch)
        report.sentences += sum(len(c.sentences) for c in batch)
        return writer.submit(self._write_batch, batch, rows, stored, turns)

    def _embed_batch(self, batch: list[ChunkedDocument]) -> list[dict[str, Any]]:
        # Each sentence's first holding chunk: where it is pooled from (late), and whether a pack stores it.
        holders = [_holding_chunks(item) if self.config.embed_sentences else [] for item in batch]
        chunk_vectors, sentence_vectors, pooled = self._embed_units(batch, holders)
        rows: list[dict[str, Any]] = []
        ci = si = 0
        for item, held in zip(batch, holders, strict=True):
            cv = chunk_vectors[ci : ci + len(item.chunks)]
            sv = sentence_vectors[si : si + len(item.sentences)] if sentence_vectors is not None else None
            ci += len(item.chunks)
            si += len(item.sentences)
            center = centroid(cv)
            summary, chosen = summarize(item.sentences, sv if sv is not None else np.zeros((0, 0)), center)
            rows.append(
                {
                    "chunks": cv,
                    "sentences": sv,
                    "holders": held,
                    "centroid": center,
                    "profile": centroid(sv[chosen]) if sv is not None and chosen else center,
                    "summary": summary,
                    "summary_sentences": [item.sentences[i] for i in chosen],
                    "keywords": keywords(item.document.title, item.document.text),
                }
            )
        if pooled:
            self._profiles_from_sentences_alone(batch, rows)
        return rows

    def _profiles_from_sentences_alone(
        self, batch: list[ChunkedDocument], rows: list[dict[str, Any]]
    ) -> None:
        """Profile vectors from the summary sentences read alone, for documents whose summary has a
        sentence in every chunk.

        A pooled sentence vector leans towards its chunk. When the summary sentences between them lie in
        every chunk (a document of one or two chunks, as most of hotpotqa-500's are), their pooled mean is
        the chunk centroid again, and routing would have one signal where it needs two. Elsewhere the
        summary picks a few of many chunks, and the pooled profile already differs from the centroid, at
        no model cost.
        """
        rows = [
            row
            for item, row in zip(batch, rows, strict=True)
            if _in_every_chunk(item, row["summary_sentences"])
        ]
        summaries = [row["summary_sentences"] for row in rows]
        readings = [unit_reading(u.text, u.headers) for units in summaries for u in units]
        vectors = self._embedder().embed_documents(readings)
        first = 0
        for row, units in zip(rows, summaries, strict=True):
            if units:
                row["profile"] = centroid(vectors[first : first + len(units)])
            first += len(units)

    def _embed_units(
        self, batch: list[ChunkedDocument], holders: list[list[int | None]]
    ) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """The batch's chunk vectors and, when sentences are embedded, its sentence vectors, in unit order;
        and whether the sentence vectors were pooled from the chunks' passes (late)."""
        embedder = self._embedder()
        chunk_texts = [
            embedding_text(c.document.title, u.section_path, u.text) for c in batch for u in c.chunks
        ]
        if not self.config.embed_sentences:
            return embedder.embed_documents(chunk_texts), None, False
        if pools_sentences(self.config, embedder):
            assert isinstance(embedder, SpanEmbedder)
            return *_late_vectors(embedder, batch, holders, chunk_texts), True
        sentence_texts = [unit_reading(u.text, u.headers) for c in batch for u in c.sentences]
        vectors = embedder.embed_documents(chunk_texts + sentence_texts)
        return vectors[: len(chunk_texts)], vectors[len(chunk_texts) :], False

    def _write_batch(
        self, batch: list[ChunkedDocument], rows: list[dict[str, Any]], stored: set[str], turns: WriterTurns
    ) -> None:
        """Write a batch: one upsert per collection, profiles last (a document without one is absent)."""
        in_pass = pass_signal(self._embedder())
        doc_ids = [c.document.doc_id for c in batch]
        discard_catalog(self.config)
        self._journal.begin(doc_ids)
        for doc_id in doc_ids:
            if doc_id in stored:
                turns.take(in_pass)
                self._delete_everywhere(doc_id)
        records: dict[CollectionName, list[_Row]] = {name: [] for name in _WRITE_ORDER}
        for item, row in zip(batch, rows, strict=True):
            for name, items in _document_records(item, row).items():
                records[name].extend(items)
        for name in _WRITE_ORDER:
            if records[name]:
                ids, texts, metadatas, vectors = zip(*records[name], strict=True)
                turns.take(in_pass)
                self.store.upsert(name, ids=ids, texts=texts, metadatas=metadatas, vectors=np.stack(vectors))
        self._journal.done(doc_ids)

    def remove(self, doc_id: str) -> bool:
        """Delete a document from every collection and from BM25; False if it was not there."""
        with self._write_lock():
            if not self.store.get("documents", ids=[doc_id], with_texts=False):
                return False
            discard_catalog(self.config)
            self._journal.begin([doc_id])
            self._delete_everywhere(doc_id)
            self._journal.done([doc_id])
            self._publish()
        return True


def _halves(batch: list[ChunkedDocument]) -> list[list[ChunkedDocument]]:
    """The last batch cut in two by its chunks, so that its first half is written while the second is
    embedded: nothing is left to overlap the last write, which the caller waits for."""
    total = sum(len(item.chunks) for item in batch)
    held = 0
    for cut, item in enumerate(batch[:-1], start=1):
        held += len(item.chunks)
        if 2 * held >= total:
            return [batch[:cut], batch[cut:]]
    return [batch] if batch else []


def _prefetch(items: Iterator[T], depth: int = 256) -> Iterator[T]:
    """Run an iterator in a background thread, ``depth`` items ahead of its consumer."""
    buffer: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                buffer.put((True, item))
            buffer.put((False, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            buffer.put((False, exc))

    threading.Thread(target=produce, daemon=True).start()
    while True:
        more, item = buffer.get()
        if not more:
            if item is not None:
                raise item
            return
        yield item


def _late_vectors(
    embedder: SpanEmbedder,
    batch: list[ChunkedDocument],
    holders: list[list[int | None]],
    chunk_texts: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Chunk vectors, and sentence vectors pooled from the pass of the first chunk holding each sentence.

    A sentence inside no chunk is embedded alone, as is one whose word pieces fall past the model's window
    in its chunk (the embedder's ``stats.span_passes`` counts both), and a row with headers, which the
    model reads after them.
    """
    spans: list[list[tuple[int, int]]] = [[] for _ in chunk_texts]
    places: list[tuple[int, int] | None] = []
    sentences: list[Unit] = []
    first = 0
    for item, item_holders in zip(batch, holders, strict=True):
        for sentence, held in zip(item.sentences, item_holders, strict=True):
            sentences.append(sentence)
            if held is None or sentence.headers:
                places.append(None)
                continue
            position, chunk = first + held, item.chunks[held]
            offset = len(chunk_texts[position]) - len(chunk.text) + sentence.start - chunk.start
            spans[position].append((offset, offset + len(sentence.text)))
            places.append((position, len(spans[position]) - 1))
        first += len(item.chunks)
    chunk_vectors, span_vectors = embedder.embed_spans(chunk_texts, spans)
    vectors = np.zeros((len(sentences), chunk_vectors.shape[1]), dtype=np.float32)
    for i, place in enumerate(places):
        if place is not None:
            vectors[i] = span_vectors[place[0]][place[1]]
    orphans = [i for i, place in enumerate(places) if place is None]
    if orphans:
        vectors[orphans] = embedder.embed_documents(
            [unit_reading(sentences[i].text, sentences[i].headers) for i in orphans]
        )
        embedder.stats.span_passes += len(orphans)
    return chunk_vectors, vectors


def _holding_chunks(item: ChunkedDocument, sentences: Sequence[Unit] | None = None) -> list[int | None]:
    """For each sentence (by default every one of the document's), the ordinal of the first chunk holding
    it whole (None when no chunk does)."""
    return [
        next(
            (
                ordinal
                for ordinal, chunk in enumerate(item.chunks)
                if chunk.start <= sentence.start and sentence.end <= chunk.end
            ),
            None,
        )
        for sentence in (item.sentences if sentences is None else sentences)
    ]


def _in_every_chunk(item: ChunkedDocument, sentences: Sequence[Unit]) -> bool:
    """Whether the given sentences between them lie in every chunk of the document."""
    return bool(sentences) and set(_holding_chunks(item, sentences)) >= set(range(len(item.chunks)))


def _document_records(item: ChunkedDocument, row: dict[str, Any]) -> dict[CollectionName, list[_Row]]:
    """A document's records for each collection: (id, text, metadata, vector)."""
    doc = item.document
    base: Metadata = {"doc_id": doc.doc_id, "content_hash": doc.content_hash}
    records: dict[CollectionName, list[_Row]] = {}
    if row["sentences"] is not None:
        records["sentences"] = _sentence_packs(item, row["sentences"], row["holders"], row["centroid"])
    records["chunks"] = [
        (u.unit_id, u.text, _chunk_metadata(u, base, doc.title), v)
        for u, v in zip(item.chunks, row["chunks"], strict=True)
    ]
    if item.chunks:
        records["centroids"] = [(doc.doc_id, doc.title, base, row["centroid"])]
    profile: Metadata = {
        **base,
        "title": doc.title,
        "source": doc.source,
        "summary": row["summary"],
        "keywords": ", ".join(row["keywords"]),
        "chunks": len(item.chunks),
        "sentences": len(item.sentences),
        "pages": len(doc.pages),
        "chars": len(doc.text),
        "spans": json.dumps(_spans_of(doc)),
    }
    records["documents"] = [(doc.doc_id, doc.text, profile, row["profile"])]
    return records


def _spans_of(doc: Document) -> dict[str, list[list[Any]]]:
    """A document's sections, pages and (when it has any) rows, as its profile stores them."""
    spans: dict[str, list[list[Any]]] = {
        "sections": [[s.start, s.end, list(s.label), s.page] for s in doc.sections],
        "pages": [[p.start, p.end, p.page] for p in doc.pages],
    }
    if doc.rows:
        spans["rows"] = [[r.start, r.end, list(r.label), r.page] for r in doc.rows]
    return spans


def _chunk_metadata(unit: Unit, base: Metadata, title: str) -> Metadata:
    meta: Metadata = {**base, "start": unit.start, "end": unit.end, "ordinal": unit.ordinal, "title": title}
    meta["section"] = " > ".join(unit.section_path)
    if unit.page is not None:
        meta["page"] = unit.page
    if unit.parent_id is not None:
        meta["parent_id"] = unit.parent_id
    return meta


def _sentence_packs(
    item: ChunkedDocument, vectors: np.ndarray, holders: list[int | None], center: np.ndarray
) -> list[_Row]:
    """The document's pack records (see :mod:`retrieval.packs`): its sentences that a chunk holds whole, with
    the document's centroid as their vector."""
    held = [
        SentenceVector.of_unit(unit, vector)
        for unit, vector, ordinal in zip(item.sentences, vectors, holders, strict=True)
        if ordinal is not None
    ]
    return [
        (pack_id, "", metadata, center) for pack_id, metadata in document_packs(item.document.doc_id, held)
    ]


def stored_document(record: Record) -> Document:
    """A stored document rebuilt from its profile record: full text, sections, pages and rows."""
    meta = record.metadata
    spans = json.loads(str(meta.get("spans", '{"sections": [], "pages": []}')))
    return Document(
        doc_id=record.id,
        title=str(meta.get("title", "")),
        text=record.text,
        source=str(meta.get("source", "")),
        sections=[Span(s, e, tuple(label), page) for s, e, label, page in spans["sections"]],
        pages=[Span(s, e, (), page) for s, e, page in spans["pages"]],
        rows=[Span(s, e, tuple(label), page) for s, e, label, page in spans.get("rows", [])],
    )
