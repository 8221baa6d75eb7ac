"""The side indexes beside Chroma: BM25 over chunks and whole documents, and the titles that link documents.

They are caches of the store. The last writer saves them in ``<home>/bm25`` with the store's fingerprint (a
hash of every document's content hash) as a marker; a reader loads them when the marker matches the store,
rebuilds them when it does not, and reopens Chroma when the marker shows another process changed the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrieval.lexical import LexicalIndex
    from retrieval.links import TitleIndex
    from retrieval.store import ChromaStore

SIDE_FOLDER = "bm25"
_MARKER_FILE = "fingerprint"


def read_marker(folder: Path) -> str:
    """The fingerprint the last writer left beside the side indexes in ``folder`` ("" before any)."""
    marker = folder / _MARKER_FILE
    return marker.read_text() if marker.exists() else ""


def stored_hashes(store: ChromaStore) -> dict[str, str]:
    """Content hash of every stored document, by doc id."""
    records = store.iterate("documents", with_texts=False)
    return {r.id: str(r.metadata.get("content_hash", "")) for r in records}


@dataclass(frozen=True)
class SideIndexes:
    """The indexes derived from the store, valid while its fingerprint is unchanged."""

    fingerprint: str
    chunks: LexicalIndex
    documents: LexicalIndex
    titles: TitleIndex

    def holds(self, doc_id: str) -> bool:
        """Whether a document is stored whole (has a profile), so that searches may return it."""
        return doc_id in self.titles.titles


class SideIndexCache:
    """The side indexes of one store, kept in step with it across processes."""

    def __init__(self, store: ChromaStore, folder: Path) -> None:
        self._store = store
        self._folder = folder
        self._side: SideIndexes | None = None
        self._store_seen = read_marker(self._folder)

    def _fingerprint(self) -> str:
        hashes = sorted(stored_hashes(self._store).items())
        return hashlib.sha256(json.dumps(hashes).encode()).hexdigest()

    def current(self) -> SideIndexes:
        """The side indexes of the store as it is now; when another writer changed the store since this
        cache opened or last wrote it, Chroma is reopened too, so that searches see the change."""
        on_disk = read_marker(self._folder)
        if on_disk != self._store_seen:
            self._store.reopen()
            self._store_seen = on_disk
        if self._side is not None and self._side.fingerprint == on_disk:
            return self._side
        if on_disk and on_disk == self._fingerprint() and (self._folder / "titles.json").exists():
            from retrieval.lexical import LexicalIndex  # the marker alone is read where BM25 is not needed
            from retrieval.links import TitleIndex

            self._side = SideIndexes(
                fingerprint=on_disk,
                chunks=LexicalIndex.load(self._folder / "chunks"),
                documents=LexicalIndex.load(self._folder / "documents"),
                titles=TitleIndex.load(self._folder / "titles.json"),
            )
            return self._side
        return self.rebuild()

    def rebuild(self) -> SideIndexes:
        """Rebuild the side indexes from the store: BM25 over chunks (with title and section) and over
        whole documents, and the documents' titles."""
        from retrieval.lexical import LexicalIndex
        from retrieval.links import TitleIndex

        doc_rows = list(self._store.iterate("documents"))
        profiled = {r.id for r in doc_rows}
        chunk_rows = [r for r in self._store.iterate("chunks") if r.metadata.get("doc_id") in profiled]
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
        side = SideIndexes(self._fingerprint(), chunks, documents, titles)
        chunks.save(self._folder / "chunks")
        documents.save(self._folder / "documents")
        titles.save(self._folder / "titles.json")
        (self._folder / _MARKER_FILE).write_text(side.fingerprint)
        self._side = side
        self._store_seen = side.fingerprint
        return side
