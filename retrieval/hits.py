"""What the index hands out: chunk hits and the passages they become, sentences, profiles, reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from retrieval.errors import LoaderError
from retrieval.models import Unit, UnitRole

if TYPE_CHECKING:  # only named in annotations: listing profiles needs neither Chroma nor numpy
    import numpy as np

    from retrieval.store import Record


class Passage(TypedDict):
    """A chunk hit as plain JSON-ready data, the form the agent's graph state and checkpoints carry."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    section: str
    page: int | None
    score: float


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


def passage_from_hit(hit: ChunkHit, score: float) -> Passage:
    """A chunk hit as the graph state carries it, with the given score."""
    return Passage(
        chunk_id=hit.chunk_id,
        doc_id=hit.doc_id,
        title=hit.title,
        text=hit.text,
        start=hit.start,
        end=hit.end,
        section=hit.section,
        page=hit.page,
        score=score,
    )


def hit_from_passage(passage: Passage) -> ChunkHit:
    """A passage back as a chunk hit; a passage does not carry its ordinal, so it is 0."""
    return ChunkHit(
        chunk_id=passage["chunk_id"],
        doc_id=passage["doc_id"],
        title=passage["title"],
        text=passage["text"],
        start=passage["start"],
        end=passage["end"],
        section=passage["section"],
        page=passage["page"],
        ordinal=0,
        score=passage["score"],
    )


@dataclass(frozen=True)
class SentenceVector:
    """A stored sentence or row (a table row, a form line) with its embedding."""

    sentence_id: str
    doc_id: str
    text: str
    start: int
    end: int
    vector: np.ndarray
    role: UnitRole = "sentence"
    headers: tuple[str, ...] = ()
    """A row's column headers; empty for a sentence."""

    @classmethod
    def of_unit(cls, unit: Unit, vector: np.ndarray) -> SentenceVector:
        """A sentence or row as the chunker cut it, with its vector."""
        return cls(
            unit.unit_id,
            unit.doc_id,
            unit.text,
            unit.start,
            unit.end,
            vector,
            role=unit.role,
            headers=unit.headers,
        )

    @classmethod
    def from_record(cls, record: Record) -> SentenceVector:
        """Rebuild a sentence from a record of its own (as stored before packs, see
        :mod:`retrieval.packs`) read with its vector; a record without a role (stored before rows existed) is
        a sentence."""
        meta = record.metadata
        assert record.vector is not None
        is_row = meta.get("role") == "row"
        return cls(
            record.id,
            str(meta["doc_id"]),
            record.text,
            int(meta["start"]),
            int(meta["end"]),
            record.vector,
            role="row" if is_row else "sentence",
            headers=tuple(json.loads(str(meta.get("headers", "[]")))) if is_row else (),
        )

    @property
    def reading(self) -> str:
        """The unit as a reader should see it: a row after its headers ("Total net sales | … | $81,797")."""
        return unit_reading(self.text, self.headers)


def unit_reading(text: str, headers: tuple[str, ...]) -> str:
    """A unit's text after its headers, if any, joined by " | ": how a row is embedded, quoted and shown."""
    return " | ".join((*headers, text)) if headers else text


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

    @classmethod
    def from_record(cls, record: Record) -> DocProfile:
        """Rebuild a profile from a stored document's metadata."""
        meta = record.metadata
        keywords_text = str(meta.get("keywords", ""))
        return cls(
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


@dataclass
class IngestReport:
    """What an ingestion did, file by file."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(source, note) for what a loader read past: "page 3 has no text layer"."""
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
            "notes": [{"path": p, "note": n} for p, n in self.notes],
            "chunks": self.chunks,
            "sentences": self.sentences,
            "seconds": round(self.seconds, 3),
        }
