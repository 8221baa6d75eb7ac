"""The ``Index`` facade: ingest, remove, list and search documents at every grain.

Write protocol (what makes an ingestion safe to kill at any point): under a file lock, a document is
first entered in the journal, then its old entries are deleted, then its sentences, chunks, centroid
and finally its profile are written; only then does the journal let it go. A killed run leaves
journal entries that the next write undoes, and a document without a profile counts as absent, so
it is simply ingested again. The side indexes (BM25, and the titles that link documents) are
rebuilt from the store whenever the store's fingerprint changes.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from retrieval.chunking import chunk_document
from retrieval.config import IndexConfig
from retrieval.embeddings import Embedder, make_embedder
from retrieval.errors import IndexBusyError, LoaderError, RetrievalError
from retrieval.journal import Journal
from retrieval.lexical import LexicalIndex
from retrieval.links import TitleIndex
from retrieval.loaders import corpus_document_id, iter_files, load_file, resolved_location
from retrieval.models import ChunkedDocument, Document, Span, Unit
from retrieval.profiles import centroid, keywords, summarize
from retrieval.store import ChromaStore, Metadata, Record

IngestStatus = Literal["added", "unchanged", "replaced", "failed"]
BATCH_CHUNKS = 64
T = TypeVar("T")


@dataclass(frozen=True)
class ChunkHit:
    """A chunk found by a search, with everything needed to cite it."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    section: str
    page: int | None
    ordinal: int
    score: float = 0.0

    @classmethod
    def from_record(cls, record: Record) -> ChunkHit:
        """Rebuild a hit from a stored chunk."""
        meta = record.metadata
        return cls(
            chunk_id=record.id,
            doc_id=str(meta["doc_id"]),
            title=str(meta.get("title", "")),
            text=record.text,
            start=int(meta["start"]),
            end=int(meta["end"]),
            section=str(meta.get("section", "")),
            page=int(meta["page"]) if "page" in meta else None,
            ordinal=int(meta.get("ordinal", 0)),
            score=record.score,
        )


@dataclass(frozen=True)
class SentenceVector:
    """A stored sentence with its embedding."""

    sentence_id: str
    doc_id: str
    text: str
    start: int
    end: int
    vector: np.ndarray


@dataclass(frozen=True)
class DocProfile:
    """What the index knows about one document without reading its chunks."""

    doc_id: str
    title: str
    source: str
    summary: str
    keywords: list[str]
    content_hash: str
    chunks: int
    sentences: int
    pages: int
    chars: int


@dataclass
class IngestReport:
    """What an ingestion did, file by file."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    sentences: int = 0
    seconds: float = 0.0

    def fail(self, error: LoaderError) -> None:
        """Record a file or folder that could not be ingested, with the reason."""
        self.failed.append((error.path, error.reason))

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "added": self.added,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks": self.chunks,
            "sentences": self.sentences,
            "seconds": round(self.seconds, 3),
        }


ProgressCallback = Callable[[int, int, str], None]


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


def embedding_text(chunk: Unit, title: str) -> str:
    """A chunk as it is embedded and indexed for BM25: with its document title and section as context."""
    header = [title] + [part for part in chunk.section_path if part and part != title]
    return "\n".join(header + [chunk.text])


class Index:
    """Documents at every grain in Chroma, with BM25 beside them."""

    def __init__(self, config: IndexConfig, *, embedder: Embedder | None = None) -> None:
        self.config = config
        self._embedder = embedder
        self.store = ChromaStore(config)
        config.home.mkdir(parents=True, exist_ok=True)
        self._journal = Journal(config.home / "journal.sqlite")
        self._side: _SideIndexes | None = None
        self._store_seen = self._marker()

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self.config.embedding)
        return self._embedder

    # ----- writing -----------------------------------------------------------------------------

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
        for doc_id in pending:
            self._delete_everywhere(doc_id)
        self._journal.done(pending)

    def _delete_everywhere(self, doc_id: str) -> None:
        for name in ("documents", "centroids", "chunks", "sentences"):
            self.store.delete(name, {"doc_id": doc_id})  # type: ignore[arg-type]

    def stored_hashes(self) -> dict[str, str]:
        """Content hash of every stored document, by doc id."""
        return {
            r.id: str(r.metadata.get("content_hash", ""))
            for r in self.store.iterate("documents", with_texts=False)
        }

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
        """Load and cut documents in a thread ahead of the embedding, write batches in another thread."""
        started = time.perf_counter()
        with self._write_lock(on_wait), ThreadPoolExecutor(max_workers=1) as writer:
            stored = self.stored_hashes()
            batch: list[ChunkedDocument] = []
            last_position = position = -1
            pending_write: Future[None] | None = None
            for position, item in _prefetch(self._changed(documents, stored, report)):
                if item is not None:
                    batch.append(item)
                if sum(len(c.chunks) for c in batch) >= BATCH_CHUNKS:
                    pending_write = self._flush(batch, writer, pending_write, report, set(stored))
                    batch = []
                if not batch:
                    for done in range(last_position + 1, position + 1):
                        advance(done)
                    last_position = position
            if batch:
                pending_write = self._flush(batch, writer, pending_write, report, set(stored))
            if pending_write is not None:
                pending_write.result()
            for done in range(last_position + 1, position + 1):
                advance(done)
            if report.added or report.replaced:
                self._rebuild_side_indexes()
        report.seconds = time.perf_counter() - started
        return report

    def _changed(
        self, documents: Iterable[tuple[int, Document | None]], stored: dict[str, str], report: IngestReport
    ) -> Iterator[tuple[int, ChunkedDocument | None]]:
        """Each document cut into units when new or changed; None for unchanged, duplicate or failed ones."""
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
            old_hash = stored.get(doc.doc_id)
            if old_hash == doc.content_hash:
                report.unchanged.append(doc.doc_id)
                yield position, None
                continue
            (report.replaced if old_hash else report.added).append(doc.doc_id)
            yield position, chunk_document(doc, self.config.chunking)

    def _flush(
        self,
        batch: list[ChunkedDocument],
        writer: ThreadPoolExecutor,
        previous: Future[None] | None,
        report: IngestReport,
        stored: set[str],
    ) -> Future[None]:
        """Embed a batch here while the writer thread stores the previous one."""
        rows = self._embed_batch(batch)
        if previous is not None:
            previous.result()
        report.chunks += sum(len(c.chunks) for c in batch)
        report.sentences += sum(len(c.sentences) for c in batch)
        return writer.submit(self._write_batch, batch, rows, stored)

    def _embed_batch(self, batch: list[ChunkedDocument]) -> list[dict[str, Any]]:
        chunk_texts = [embedding_text(u, c.document.title) for c in batch for u in c.chunks]
        sentence_texts = [u.text for c in batch for u in c.sentences] if self.config.embed_sentences else []
        vectors = self.embedder.embed_documents(chunk_texts + sentence_texts)
        chunk_vectors, sentence_vectors = vectors[: len(chunk_texts)], vectors[len(chunk_texts) :]
        rows: list[dict[str, Any]] = []
        ci = si = 0
        for item in batch:
            cv = chunk_vectors[ci : ci + len(item.chunks)]
            sv = sentence_vectors[si : si + len(item.sentences)] if self.config.embed_sentences else None
            ci += len(item.chunks)
            si += len(item.sentences)
            center = centroid(cv)
            summary, chosen = summarize(item.sentences, sv if sv is not None else np.zeros((0, 0)), center)
            profile = centroid(sv[chosen]) if sv is not None and chosen else center
            terms = keywords(item.document.title, item.document.text)
            rows.append(
                {
                    "chunks": cv,
                    "sentences": sv,
                    "centroid": center,
                    "profile": profile,
                    "summary": summary,
                    "keywords": terms,
                }
            )
        return rows

    def _write_batch(
        self, batch: list[ChunkedDocument], rows: list[dict[str, Any]], stored: set[str]
    ) -> None:
        """Write a batch: one upsert per collection, profiles last (a document without one is absent)."""
        doc_ids = [c.document.doc_id for c in batch]
        self._journal.begin(doc_ids)
        for doc_id in doc_ids:
            if doc_id in stored:
                self._delete_everywhere(doc_id)
        records: dict[str, list[tuple[str, str, Metadata, np.ndarray]]] = {
            "sentences": [],
            "chunks": [],
            "centroids": [],
            "documents": [],
        }
        for item, row in zip(batch, rows, strict=True):
            for name, items in _document_records(item, row).items():
                records[name].extend(items)
        for name in ("sentences", "chunks", "centroids", "documents"):
            if records[name]:
                ids, texts, metadatas, vectors = zip(*records[name], strict=True)
                self.store.upsert(
                    name,  # type: ignore[arg-type]
                    ids=ids,
                    texts=texts,
                    metadatas=metadatas,
                    vectors=np.stack(vectors),
                )
        self._journal.done(doc_ids)

    def remove(self, doc_id: str) -> bool:
        """Delete a document from every collection and from BM25; False if it was not there."""
        with self._write_lock():
            if not self.store.get("documents", ids=[doc_id], with_texts=False):
                return False
            self._journal.begin([doc_id])
            self._delete_everywhere(doc_id)
            self._journal.done([doc_id])
            self._rebuild_side_indexes()
        return True

    # ----- reading -----------------------------------------------------------------------------

    def documents(self) -> list[DocProfile]:
        """Every stored document's profile, sorted by title."""
        profiles = [_profile(r) for r in self.store.iterate("documents", with_texts=False)]
        return sorted(profiles, key=lambda p: (p.title.lower(), p.doc_id))

    def documents_by_id(self, doc_ids: Sequence[str]) -> list[DocProfile]:
        """Profiles of the given documents, in the order asked (unknown ids left out)."""
        if not doc_ids:
            return []
        found = {r.id: _profile(r) for r in self.store.get("documents", ids=list(doc_ids), with_texts=False)}
        return [found[d] for d in doc_ids if d in found]

    def document(self, doc_id: str) -> Document:
        """A stored document with its full text, sections and pages."""
        found = self.store.get("documents", ids=[doc_id])
        if not found:
            raise RetrievalError(f"no document {doc_id!r} in the index (see `multigrain docs`)")
        return _document(found[0])

    def stats(self) -> dict[str, Any]:
        """Counts per collection and where the index lives."""
        where = (
            f"http://{self.config.chroma_host}:{self.config.chroma_port}"
            if self.config.chroma_host
            else str((self.config.home / "chroma").resolve())
        )
        return {
            "documents": self.store.count("documents"),
            "chunks": self.store.count("chunks"),
            "sentences": self.store.count("sentences"),
            "chroma": where,
            "embedding_model": self.config.embedding.backend,
            "chunk_tokens": self.config.chunking.chunk_tokens,
            "overlap_tokens": self.config.chunking.overlap_tokens,
        }

    def dense_documents(
        self, vector: np.ndarray, k: int, *, by: Literal["profile", "centroid"]
    ) -> list[Record]:
        """Documents nearest to a query vector, by profile or by chunk centroid."""
        name: Literal["documents", "centroids"] = "documents" if by == "profile" else "centroids"
        side = self._side_indexes()
        return [r for r in self.store.query(name, vector, min(k, self.store.count(name))) if side.holds(r.id)]

    def bm25_documents(self, query: str, k: int) -> list[tuple[str, float]]:
        """Documents by BM25 over their whole text."""
        return self._side_indexes().documents.search(query, k)

    def documents_named_in(self, text: str, *, exclude: Iterable[str] = ()) -> list[str]:
        """Ids of the stored documents whose title ``text`` names (see :mod:`retrieval.links`)."""
        return self._side_indexes().titles.named_in(text, exclude=exclude)

    def dense_chunks(
        self, vector: np.ndarray, k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[ChunkHit]:
        """Chunks nearest to a query vector, optionally only inside the given documents."""
        return self.dense_chunks_many(np.asarray(vector)[None, :], k, doc_ids=doc_ids)[0]

    def dense_chunks_many(
        self, vectors: np.ndarray, k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[list[ChunkHit]]:
        """:meth:`dense_chunks` for several query vectors at once.

        Inside given documents the search is exact: their chunks are fetched by id (ids are derived from
        the profiles' chunk counts) and scored in numpy, which stays fast as the corpus grows, where a
        metadata-filtered vector search slows down with the size of the collection.
        """
        if doc_ids is None:
            side = self._side_indexes()
            found = self.store.query_many("chunks", vectors, k)
            return [
                [ChunkHit.from_record(r) for r in records if side.holds(str(r.metadata["doc_id"]))]
                for records in found
            ]
        hits, scores = self._scored_chunks(vectors, doc_ids)
        results = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            results.append([replace(hits[i], score=float(row[i])) for i in top])
        return results

    def nearest_chunk_of_each(self, vector: np.ndarray, doc_ids: Sequence[str]) -> list[ChunkHit]:
        """Each given document's chunk nearest to a query vector, in the order of ``doc_ids``."""
        hits, scores = self._scored_chunks(np.asarray(vector)[None, :], doc_ids)
        best: dict[str, ChunkHit] = {}
        for i in np.argsort(-scores[0], kind="stable"):
            best.setdefault(hits[i].doc_id, replace(hits[i], score=float(scores[0][i])))
        return [best[d] for d in doc_ids if d in best]

    def _scored_chunks(
        self, vectors: np.ndarray, doc_ids: Sequence[str]
    ) -> tuple[list[ChunkHit], np.ndarray]:
        """Every chunk of the given documents, fetched by id, and its similarity to each vector (by row)."""
        ids = self._unit_ids(doc_ids, "chunks")
        records = self.store.get("chunks", ids=ids, with_vectors=True) if ids else []
        if not records:
            return [], np.zeros((len(vectors), 0), dtype=np.float32)
        matrix = np.stack([r.vector for r in records if r.vector is not None])
        return [ChunkHit.from_record(r) for r in records], np.asarray(vectors, dtype=np.float32) @ matrix.T

    def _unit_ids(self, doc_ids: Sequence[str], kind: Literal["chunks", "sentences"]) -> list[str]:
        """Ids of every chunk or sentence of the given documents, from their profiles' counts."""
        letter = "c" if kind == "chunks" else "t"
        return [
            f"{p.doc_id}#{letter}{i}" for p in self.documents_by_id(doc_ids) for i in range(getattr(p, kind))
        ]

    def bm25_chunks(self, query: str, k: int, *, doc_ids: Sequence[str] | None = None) -> list[ChunkHit]:
        """Chunks by BM25, optionally only inside the given documents."""
        found = self._side_indexes().chunks.search(query, k, doc_ids=doc_ids)
        hits = {h.chunk_id: h for h in self.chunks([chunk_id for chunk_id, _ in found])}
        return [
            ChunkHit(**{**hits[chunk_id].__dict__, "score": score})
            for chunk_id, score in found
            if chunk_id in hits
        ]

    def chunks(self, chunk_ids: Sequence[str]) -> list[ChunkHit]:
        """Stored chunks by id, in the order asked."""
        if not chunk_ids:
            return []
        by_id = {r.id: ChunkHit.from_record(r) for r in self.store.get("chunks", ids=chunk_ids)}
        return [by_id[c] for c in chunk_ids if c in by_id]

    def neighbours(self, hit: ChunkHit) -> list[ChunkHit]:
        """The chunks just before and after a chunk in its document."""
        doc_key = hit.chunk_id.rsplit("#c", 1)[0]
        ids = [f"{doc_key}#c{hit.ordinal - 1}", f"{doc_key}#c{hit.ordinal + 1}"]
        return self.chunks([i for i in ids if not i.endswith("#c-1")])

    def sentences_of(self, hits: Sequence[ChunkHit]) -> dict[str, list[SentenceVector]]:
        """The embedded sentences inside each chunk, by chunk id."""
        doc_ids = sorted({h.doc_id for h in hits})
        if not doc_ids:
            return {}
        records = self.store.get("sentences", ids=self._unit_ids(doc_ids, "sentences"), with_vectors=True)
        by_doc: dict[str, list[SentenceVector]] = {}
        for r in records:
            meta = r.metadata
            assert r.vector is not None
            by_doc.setdefault(str(meta["doc_id"]), []).append(
                SentenceVector(
                    r.id, str(meta["doc_id"]), r.text, int(meta["start"]), int(meta["end"]), r.vector
                )
            )
        return {
            h.chunk_id: sorted(
                (s for s in by_doc.get(h.doc_id, []) if s.start >= h.start and s.end <= h.end),
                key=lambda s: s.start,
            )
            for h in hits
        }

    # ----- side indexes: BM25 and titles, caches of the store -----------------------------------

    def _fingerprint(self) -> str:
        hashes = sorted(self.stored_hashes().items())
        return hashlib.sha256(json.dumps(hashes).encode()).hexdigest()

    def _marker(self) -> str:
        """The fingerprint the last writer left beside the side indexes ("" before any)."""
        marker = self.config.home / "bm25" / "fingerprint"
        return marker.read_text() if marker.exists() else ""

    def _side_indexes(self) -> _SideIndexes:
        """The side indexes of the store as it is now; when another writer changed the store since this
        index opened or last wrote it, Chroma is reopened too, so that searches see the change."""
        folder = self.config.home / "bm25"
        on_disk = self._marker()
        if on_disk != self._store_seen:
            self.store.reopen()
            self._store_seen = on_disk
        if self._side is not None and self._side.fingerprint == on_disk:
            return self._side
        if on_disk and on_disk == self._fingerprint() and (folder / "titles.json").exists():
            self._side = _SideIndexes(
                fingerprint=on_disk,
                chunks=LexicalIndex.load(folder / "chunks"),
                documents=LexicalIndex.load(folder / "documents"),
                titles=TitleIndex.load(folder / "titles.json"),
            )
            return self._side
        return self._rebuild_side_indexes()

    def _rebuild_side_indexes(self) -> _SideIndexes:
        """Rebuild the side indexes from the store: BM25 over chunks (with title and section) and over
        whole documents, and the documents' titles."""
        doc_rows = list(self.store.iterate("documents"))
        profiled = {r.id for r in doc_rows}
        chunk_rows = [r for r in self.store.iterate("chunks") if r.metadata.get("doc_id") in profiled]
        chunks = LexicalIndex.build(
            [r.id for r in chunk_rows],
            [str(r.metadata["doc_id"]) for r in chunk_rows],
            [f"{r.metadata.get('title', '')}\n{r.metadata.get('section', '')}\n{r.text}" for r in chunk_rows],
        )
        documents = LexicalIndex.build(
            [r.id for r in doc_rows],
            [r.id for r in doc_rows],
            [f"{r.metadata.get('title', '')}\n{r.text}" for r in doc_rows],
        )
        titles = TitleIndex({r.id: str(r.metadata.get("title", "")) for r in doc_rows})
        side = _SideIndexes(self._fingerprint(), chunks, documents, titles)
        folder = self.config.home / "bm25"
        chunks.save(folder / "chunks")
        documents.save(folder / "documents")
        titles.save(folder / "titles.json")
        (folder / "fingerprint").write_text(side.fingerprint)
        self._side = side
        self._store_seen = side.fingerprint
        return side


@dataclass(frozen=True)
class _SideIndexes:
    """The indexes derived from the store, valid while its fingerprint is unchanged."""

    fingerprint: str
    chunks: LexicalIndex
    documents: LexicalIndex
    titles: TitleIndex

    def holds(self, doc_id: str) -> bool:
        """Whether a document is stored whole (has a profile), so that searches may return it."""
        return doc_id in self.titles.titles


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


def _document_records(
    item: ChunkedDocument, row: dict[str, Any]
) -> dict[str, list[tuple[str, str, Metadata, np.ndarray]]]:
    """A document's records for each collection: (id, text, metadata, vector)."""
    doc = item.document
    base: Metadata = {"doc_id": doc.doc_id, "content_hash": doc.content_hash}
    records: dict[str, list[tuple[str, str, Metadata, np.ndarray]]] = {}
    if row["sentences"] is not None:
        records["sentences"] = [
            (u.unit_id, u.text, _unit_metadata(u, base), v)
            for u, v in zip(item.sentences, row["sentences"], strict=True)
        ]
    records["chunks"] = [
        (u.unit_id, u.text, {**_unit_metadata(u, base), "title": doc.title}, v)
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
        "spans": json.dumps(
            {
                "sections": [[s.start, s.end, list(s.label), s.page] for s in doc.sections],
                "pages": [[p.start, p.end, p.page] for p in doc.pages],
            }
        ),
    }
    records["documents"] = [(doc.doc_id, doc.text, profile, row["profile"])]
    return records


def _unit_metadata(unit: Unit, base: Metadata) -> Metadata:
    meta: Metadata = {**base, "start": unit.start, "end": unit.end, "ordinal": unit.ordinal}
    meta["section"] = " > ".join(unit.section_path)
    if unit.page is not None:
        meta["page"] = unit.page
    if unit.parent_id is not None:
        meta["parent_id"] = unit.parent_id
    return meta


def _profile(record: Record) -> DocProfile:
    meta = record.metadata
    keywords_text = str(meta.get("keywords", ""))
    return DocProfile(
        doc_id=record.id,
        title=str(meta.get("title", "")),
        source=str(meta.get("source", "")),
        summary=str(meta.get("summary", "")),
        keywords=[k for k in keywords_text.split(", ") if k],
        content_hash=str(meta.get("content_hash", "")),
        chunks=int(meta.get("chunks", 0)),
        sentences=int(meta.get("sentences", 0)),
        pages=int(meta.get("pages", 0)),
        chars=int(meta.get("chars", 0)),
    )


def _document(record: Record) -> Document:
    meta = record.metadata
    spans = json.loads(str(meta.get("spans", '{"sections": [], "pages": []}')))
    return Document(
        doc_id=record.id,
        title=str(meta.get("title", "")),
        text=record.text,
        source=str(meta.get("source", "")),
        sections=[Span(s, e, tuple(label), page) for s, e, label, page in spans["sections"]],
        pages=[Span(s, e, (), page) for s, e, page in spans["pages"]],
    )
