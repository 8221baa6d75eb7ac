"""The data that flows through retrieval: documents and the units cut from them.

Every unit keeps character offsets into its document's text, so that
``document.text[unit.start:unit.end] == unit.text`` always holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

UnitKind = Literal["section", "chunk", "sentence"]


@dataclass(frozen=True)
class Span:
    """A labelled stretch of a document's text: a heading's section or a PDF page."""

    start: int
    end: int
    label: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class Document:
    """One source document as a loader produced it."""

    doc_id: str
    title: str
    text: str
    source: str
    sections: list[Span] = field(default_factory=list)
    pages: list[Span] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """sha256 of title and text: what decides whether a re-ingest has anything to do."""
        return hashlib.sha256(f"{self.title}\x00{self.text}".encode()).hexdigest()

    def page_at(self, offset: int) -> int | None:
        """The page number holding the character at ``offset``, if the document has pages."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.page
        return None


@dataclass(frozen=True)
class Unit:
    """A section, chunk or sentence of a document, with its exact place in the text."""

    unit_id: str
    doc_id: str
    kind: UnitKind
    text: str
    start: int
    end: int
    section_path: tuple[str, ...] = ()
    page: int | None = None
    parent_id: str | None = None
    ordinal: int = 0


@dataclass(frozen=True)
class ChunkedDocument:
    """A document cut at every grain."""

    document: Document
    sections: list[Unit]
    chunks: list[Unit]
    sentences: list[Unit]
