"""The ``Index`` facade: ingest, remove, list and search documents at every grain.

Write protocol (what makes an ingestion safe to kill at any point): under a file lock, a document is
first entered in the journal, then its old entries are deleted, then its sentences, chunks, centroid
and finally its profile are written; only then does the journal let it go. A killed run leaves
journal entries that the next write undoes, and a document without a profile counts as absent, so
it is simply ingested again. The side indexes (BM25, and the titles that link documents) are
rebuilt from the store whenever the store's fingerprint changes.

Writing lives in :mod:`retrieval.ingest`, the side indexes in :mod:`retrieval.side_indexes` and what
searches return in :mod:`retrieval.hits`; this class holds them together and searches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retrieval.calibration import SignalWeights, cached_signal_weights
from retrieval.catalog import describe, stored_counts, stored_profiles
from retrieval.config import IndexConfig
from retrieval.embeddings import Embedder, make_embedder
from retrieval.errors import RetrievalError
from retrieval.hits import ChunkHit, DocProfile, IngestReport, SentenceVector
from retrieval.ids import parse_unit_id, unit_id
from retrieval.ingest import Ingester, ProgressCallback, stored_document
from retrieval.models import Document
from retrieval.packs import stored_sentences
from retrieval.side_indexes import SIDE_FOLDER, SideIndexCache, stored_hashes
from retrieval.store import ChromaStore, Record

__all__ = ["ChunkHit", "DocProfile", "Index", "IngestReport", "SentenceVector"]


class Index:
    """Documents at every grain in Chroma, with BM25 beside them."""

    def __init__(self, config: IndexConfig, *, embedder: Embedder | None = None) -> None:
        self.config = config
        self._embedder = embedder
        self.store = ChromaStore(config)
        config.home.mkdir(parents=True, exist_ok=True)
        self.side = SideIndexCache(self.store, config.home / SIDE_FOLDER)
        self._ingester = Ingester(config, self.store, self.side, embedder=lambda: self.embedder)
        self._weights: tuple[str, SignalWeights] | None = None

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self.config.embedding)
        return self._embedder

    # ----- writing: see retrieval.ingest --------------------------------------------------------

    def stored_hashes(self) -> dict[str, str]:
        """Content hash of every stored document, by doc id."""
        return stored_hashes(self.store)

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
        """Add new files, replace changed ones and skip unchanged ones (see :meth:`Ingester.ingest`)."""
        return self._ingester.ingest(
            paths, include=include, exclude=exclude, base=base, progress=progress, on_wait=on_wait
        )

    def ingest_documents(
        self, documents: Iterable[Document], *, on_wait: Callable[[str], None] | None = None
    ) -> IngestReport:
        """Ingest documents that were loaded already (a corpus, a test fixture)."""
        return self._ingester.ingest_documents(documents, on_wait=on_wait)

    def remove(self, doc_id: str) -> bool:
        """Delete a document from every collection and from BM25; False if it was not there."""
        return self._ingester.remove(doc_id)

    # ----- reading -----------------------------------------------------------------------------

    def documents(self) -> list[DocProfile]:
        """Every stored document's profile, sorted by title."""
        return stored_profiles(self.store)

    def documents_by_id(self, doc_ids: Sequence[str]) -> list[DocProfile]:
        """Profiles of the given documents, in the order asked (unknown ids left out)."""
        if not doc_ids:
            return []
        found = {
            r.id: DocProfile.from_record(r)
            for r in self.store.get("documents", ids=list(doc_ids), with_texts=False)
        }
        return [found[d] for d in doc_ids if d in found]

    def document(self, doc_id: str) -> Document:
        """A stored document with its full text, sections and pages."""
        found = self.store.get("documents", ids=[doc_id])
        if not found:
            raise RetrievalError(f"no document {doc_id!r} in the index (see `multigrain docs`)")
        return stored_document(found[0])

    def signal_weights(self) -> SignalWeights:
        """How much BM25 and dense search are worth on this corpus (see :mod:`retrieval.calibration`):
        estimated on first use after the store changes (``multigrain ingest`` does it before it returns)."""
        fingerprint = self.side.current().fingerprint
        if self._weights is None or self._weights[0] != fingerprint:
            weights = cached_signal_weights(self, self.config.home / SIDE_FOLDER, fingerprint)
            self._weights = (fingerprint, weights)
        return self._weights[1]

    def stats(self) -> dict[str, Any]:
        """Counts per collection and where the index lives."""
        return describe(self.config, stored_counts(self.store, stored_profiles(self.store)))

    def dense_documents(
        self, vector: np.ndarray, k: int, *, by: Literal["profile", "centroid"]
    ) -> list[Record]:
        """Documents nearest to a query vector, by profile or by chunk centroid."""
        name: Literal["documents", "centroids"] = "documents" if by == "profile" else "centroids"
        side = self.side.current()
        return [r for r in self.store.query(name, vector, min(k, self.store.count(name))) if side.holds(r.id)]

    def bm25_documents(self, query: str, k: int) -> list[tuple[str, float]]:
        """Documents by BM25 over their whole text."""
        return self.side.current().documents.search(query, k)

    def document_share(self, terms: Iterable[str]) -> dict[str, float]:
        """For each stemmed term, the share of stored documents that hold it."""
        return self.side.current().documents.text_share(terms)

    def documents_named_in(self, text: str, *, exclude: Iterable[str] = ()) -> list[str]:
        """Ids of the stored documents whose title ``text`` names (see :mod:`retrieval.links`)."""
        return self.side.current().titles.named_in(text, exclude=exclude)

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
            side = self.side.current()
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
        ids = _chunk_ids(self.documents_by_id(doc_ids))
        records = self.store.get("chunks", ids=ids, with_vectors=True) if ids else []
        if not records:
            return [], np.zeros((len(vectors), 0), dtype=np.float32)
        matrix = np.stack([r.vector for r in records if r.vector is not None])
        return [ChunkHit.from_record(r) for r in records], np.asarray(vectors, dtype=np.float32) @ matrix.T

    def bm25_chunks(self, query: str, k: int, *, doc_ids: Sequence[str] | None = None) -> list[ChunkHit]:
        """Chunks by BM25, optionally only inside the given documents."""
        found = self.side.current().chunks.search(query, k, doc_ids=doc_ids)
        hits = {h.chunk_id: h for h in self.chunks([chunk_id for chunk_id, _ in found])}
        return [replace(hits[chunk_id], score=score) for chunk_id, score in found if chunk_id in hits]

    def chunks(self, chunk_ids: Sequence[str]) -> list[ChunkHit]:
        """Stored chunks by id, in the order asked."""
        if not chunk_ids:
            return []
        by_id = {r.id: ChunkHit.from_record(r) for r in self.store.get("chunks", ids=chunk_ids)}
        return [by_id[c] for c in chunk_ids if c in by_id]

    def chunks_of(self, doc_id: str) -> list[ChunkHit]:
        """Every stored chunk of a document, in text order."""
        return self.chunks(_chunk_ids(self.documents_by_id([doc_id])))

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of the given chunks, one row each in the order asked (unknown ids left out)."""
        records = {r.id: r for r in self.store.get("chunks", ids=list(chunk_ids), with_vectors=True)}
        rows = [v for c in chunk_ids if c in records and (v := records[c].vector) is not None]
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def neighbours(self, hit: ChunkHit) -> list[ChunkHit]:
        """The chunks just before and after a chunk in its document."""
        doc_id, _, _ = parse_unit_id(hit.chunk_id)
        ordinals = [i for i in (hit.ordinal - 1, hit.ordinal + 1) if i >= 0]
        return self.chunks([unit_id(doc_id, "chunk", i) for i in ordinals])

    def sentences_of(self, hits: Sequence[ChunkHit]) -> dict[str, list[SentenceVector]]:
        """The embedded sentences inside each chunk, by chunk id."""
        # Only documents with a profile are stored whole (see the write protocol above).
        doc_ids = [p.doc_id for p in self.documents_by_id(sorted({h.doc_id for h in hits}))]
        records = (
            self.store.get("sentences", where={"doc_id": {"$in": doc_ids}}, with_vectors=True)
            if doc_ids
            else []
        )
        by_doc: dict[str, list[SentenceVector]] = {}
        for sentence in stored_sentences(records):
            by_doc.setdefault(sentence.doc_id, []).append(sentence)
        return {
            h.chunk_id: sorted(
                (s for s in by_doc.get(h.doc_id, []) if s.start >= h.start and s.end <= h.end),
                key=lambda s: s.start,
            )
            for h in hits
        }


def _chunk_ids(profiles: Sequence[DocProfile]) -> list[str]:
    """Ids of every chunk of the given documents, from their profiles' counts."""
    return [unit_id(p.doc_id, "chunk", i) for p in profiles for i in range(p.chunks)]
