"""The data that flows through retrieval: documents and the units cut from them.

Every unit keeps character offsets into its document's text, so that
``document.text[unit.start:unit.end] == unit.text`` always holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

UnitKind = Literal["section", "chunk", "sentence"]
UnitRole = Literal["sentence", "row"]
"""What a finest-grain unit is: a sentence of prose, or a table row or form line ("Pilot age: 52")."""


@dataclass(frozen=True)
class Span:
    """A labelled stretch of a document's text: a heading's section, a PDF page, or a table row (whose
    label is its table's column headers, empty when the table has none or they could not be read)."""

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
    rows: list[Span] = field(default_factory=list)
    """Table rows and form lines: each becomes one finest-grain unit, quoted and cited like a sentence."""
    notes: list[str] = field(default_factory=list)
    """What the loader could not read but did not stop for, for the ingest report ("page 3 has no text
    layer")."""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """sha256 of title, text and rows (when there are any, so documents without rows keep their hash):
        what decides whether a re-ingest has anything to do."""
        content = f"{self.title}\x00{self.text}"
        if self.rows:
            content += "\x00" + json.dumps([[r.start, r.end, list(r.label)] for r in self.rows])
        return hashlib.sha256(content.encode()).hexdigest()

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
    role: UnitRole = "sentence"
    headers: tuple[str, ...] = ()
    """A row's column headers, as its table gives them."""


@dataclass(frozen=True)
class ChunkedDocument:
    """A document cut at every grain."""

    document: Document
    sections: list[Unit]
    chunks: list[Unit]
    sentences: list[Unit]
