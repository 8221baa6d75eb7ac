"""What the index holds, listed without opening Chroma: ``<home>/catalog.json``, written by the last writer.

The writer saves every document's profile and the collection counts under the write lock, beside the side
indexes' marker (see :mod:`retrieval.side_indexes`), and discards the file before it changes the store. A
reader trusts it only while it is current: its marker is the one on disk, the journal holds no half-written
document and the store is embedded (a Chroma server may be written by anyone). Otherwise, or for an index
written before catalogs existed, the listing comes from the store itself, so both give the same answer.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.config import IndexConfig
from retrieval.hits import DocProfile
from retrieval.journal import JOURNAL_FILE, Journal
from retrieval.side_indexes import SIDE_FOLDER, read_marker

if TYPE_CHECKING:
    from retrieval.index import Index
    from retrieval.store import ChromaStore

CATALOG_FILE = "catalog.json"
CHROMA_FOLDER = "chroma"
_FORMAT = 1
_COUNTED = ("documents", "chunks", "sentences")


@dataclass(frozen=True)
class Catalog:
    """Every document's profile (sorted by title) and the count of each listed collection."""

    profiles: list[DocProfile]
    counts: dict[str, int]


def stored_profiles(store: ChromaStore) -> list[DocProfile]:
    """Every stored document's profile, sorted by title."""
    profiles = [DocProfile.from_record(r) for r in store.iterate("documents", with_texts=False)]
    return sorted(profiles, key=lambda p: (p.title.lower(), p.doc_id))


def stored_counts(store: ChromaStore, profiles: list[DocProfile]) -> dict[str, int]:
    """What ``multigrain stats`` counts: stored documents and chunks, and the sentences their profiles
    count (the sentences collection holds a few packs per document, see :mod:`retrieval.packs`)."""
    return {
        "documents": store.count("documents"),
        "chunks": store.count("chunks"),
        "sentences": sum(p.sentences for p in profiles),
    }


def stored_catalog(store: ChromaStore) -> Catalog:
    """The catalog of a store as it is now."""
    profiles = stored_profiles(store)
    return Catalog(profiles=profiles, counts=stored_counts(store, profiles))


def describe(config: IndexConfig, counts: dict[str, int]) -> dict[str, Any]:
    """What ``multigrain stats`` prints: the counts, where the index lives and how it cuts and embeds."""
    where = (
        f"http://{config.chroma_host}:{config.chroma_port}"
        if config.chroma_host
        else str((config.home / CHROMA_FOLDER).resolve())
    )
    return {
        **{name: counts[name] for name in _COUNTED},
        "chroma": where,
        "embedding_model": config.embedding.backend,
        "chunk_tokens": config.chunking.chunk_tokens,
        "overlap_tokens": config.chunking.overlap_tokens,
    }


def write_catalog(config: IndexConfig, catalog: Catalog, *, marker: str) -> None:
    """Save the catalog belonging to the side indexes' ``marker``, atomically (call under the write lock)."""
    data = {
        "format": _FORMAT,
        "marker": marker,
        "collection_prefix": config.collection_prefix,
        "counts": catalog.counts,
        "documents": [asdict(p) for p in catalog.profiles],
    }
    handle, temporary = tempfile.mkstemp(dir=config.home, prefix=f".{CATALOG_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
        os.replace(temporary, config.home / CATALOG_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def discard_catalog(config: IndexConfig) -> None:
    """Remove the catalog before the store changes, so no reader takes it for current meanwhile."""
    (config.home / CATALOG_FILE).unlink(missing_ok=True)


def current_catalog(config: IndexConfig) -> Catalog | None:
    """The saved catalog if it still describes the store, an empty one if there is no store yet, else None."""
    if config.chroma_host:
        return None
    if not (config.home / CHROMA_FOLDER).exists():
        return Catalog(profiles=[], counts=dict.fromkeys(_COUNTED, 0))
    try:
        data = json.loads((config.home / CATALOG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != _FORMAT
        or data.get("collection_prefix") != config.collection_prefix
        or data.get("marker") != read_marker(config.home / SIDE_FOLDER)
    ):
        return None
    journal = config.home / JOURNAL_FILE
    if journal.exists() and Journal(journal).pending():
        return None
    try:
        return Catalog(profiles=[DocProfile(**row) for row in data["documents"]], counts=data["counts"])
    except (KeyError, TypeError):  # written with other profile fields: the store answers instead
        return None


def documents(config: IndexConfig) -> list[DocProfile]:
    """Every stored document's profile, sorted by title: from the catalog if current, else from the store."""
    catalog = current_catalog(config)
    return catalog.profiles if catalog is not None else _open_index(config).documents()


def stats(config: IndexConfig) -> dict[str, Any]:
    """:func:`describe` of the index: from the catalog when current, else from the store."""
    catalog = current_catalog(config)
    return describe(config, catalog.counts) if catalog is not None else _open_index(config).stats()


def _open_index(config: IndexConfig) -> Index:
    from retrieval.index import Index  # Chroma is loaded only when the catalog cannot answer

    return Index(config)
