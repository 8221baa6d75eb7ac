"""Table rows and form lines as finest-grain units: cut whole, stored with their headers, embedded after
them, and read back as rows."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.chunking import chunk_document
from retrieval.config import ChunkingConfig, IndexConfig
from retrieval.hits import SentenceVector
from retrieval.index import Index
from retrieval.models import Document, Span
from retrieval.packs import unpack
from retrieval.store import Record

FORM = (
    "Aviation Investigation Final Report\n"
    "Pilot age: 52\n"
    "Pilot certificate: Commercial\n"
    "The pilot reported that the engine lost power during the climb. He landed in a field.\n"
    "Total net sales    $81,797    $82,959\n"
    "Net income    $19,881    $19,442"
)
HEADERS = ("Three Months Ended July 1, 2023", "Three Months Ended June 25, 2022")


def _span(text: str, piece: str, label: tuple[str, ...] = ()) -> Span:
    start = text.index(piece)
    return Span(start, start + len(piece), label)


def _form(**overrides: Any) -> Document:
    rows = [
        _span(FORM, "Pilot age: 52"),
        _span(FORM, "Pilot certificate: Commercial"),
        _span(FORM, "Total net sales    $81,797    $82,959", HEADERS),
        _span(FORM, "Net income    $19,881    $19,442", HEADERS),
    ]
    fields: dict[str, Any] = {"doc_id": "form", "title": "N5921D", "text": FORM, "source": "t", "rows": rows}
    return Document(**(fields | overrides))


@pytest.mark.parametrize("chunk_tokens", [512, 24])
def test_each_row_is_one_whole_unit_and_no_sentence_crosses_into_a_row(chunk_tokens: int) -> None:
    doc = _form()
    cut = chunk_document(doc, ChunkingConfig(chunk_tokens=chunk_tokens, overlap_tokens=4))
    rows = [u for u in cut.sentences if u.role == "row"]
    assert [(u.text, u.headers) for u in rows] == [(FORM[r.start : r.end], r.label) for r in doc.rows]
    prose = [u.text for u in cut.sentences if u.role == "sentence"]
    assert prose == [
        "Aviation Investigation Final Report",
        "The pilot reported that the engine lost power during the climb.",
        "He landed in a field.",
    ]
    assert all(u.kind == "sentence" and FORM[u.start : u.end] == u.text for u in cut.sentences)
    for chunk in cut.chunks:
        for row in doc.rows:
            assert (
                row.end <= chunk.start
                or chunk.end <= row.start
                or chunk.start <= row.start < row.end <= chunk.end
            )
    assert all(any(c.start <= u.start and u.end <= c.end for c in cut.chunks) for u in rows)


def test_a_row_over_the_budget_is_cut_like_a_long_sentence_and_keeps_its_headers() -> None:
    cells = "    ".join(f"${n},{n:03d}" for n in range(100, 160))
    text = f"Quarterly figures follow.\nRevenue    {cells}"
    doc = Document("long", "Filing", text, "t", rows=[_span(text, f"Revenue    {cells}", ("Quarter",))])
    cut = chunk_document(doc, ChunkingConfig(chunk_tokens=40, overlap_tokens=8))
    pieces = [u for u in cut.sentences if u.role == "row"]
    assert len(pieces) > 1
    assert all(u.headers == ("Quarter",) for u in pieces)
    assert pieces[0].text.startswith("Revenue") and pieces[-1].end == len(text)


def test_rows_change_the_content_hash_and_documents_without_rows_keep_theirs() -> None:
    bare = _form(rows=[])
    assert bare.content_hash == hashlib.sha256(f"{bare.title}\x00{bare.text}".encode()).hexdigest()
    assert _form().content_hash != bare.content_hash
    relabelled = _form(rows=[_span(FORM, "Pilot age: 52", ("Field",))])
    assert relabelled.content_hash not in {bare.content_hash, _form().content_hash}


@pytest.mark.parametrize("mode", ["separate", "late"])
def test_rows_are_stored_with_their_headers_and_embedded_after_them(
    tmp_path: Path, embedder: Any, mode: str
) -> None:
    index = Index(IndexConfig(home=tmp_path, sentence_vectors=mode), embedder=embedder)
    index.ingest_documents([_form()])
    hits = index.chunks([r.id for r in index.store.get("chunks", where={"doc_id": "form"})])
    units = [u for found in index.sentences_of(hits).values() for u in found]
    by_text = {u.text: u for u in units}
    sales = by_text["Total net sales    $81,797    $82,959"]
    assert (sales.role, sales.headers) == ("row", HEADERS)
    assert FORM[sales.start : sales.end] == sales.text
    assert (by_text["Pilot age: 52"].role, by_text["Pilot age: 52"].headers) == ("row", ())
    assert by_text["He landed in a field."].role == "sentence"
    headed, bare = embedder.embed_documents([" | ".join((*HEADERS, sales.text)), sales.text])
    assert float(sales.vector @ headed) == pytest.approx(1.0, abs=1e-5)
    assert float(sales.vector @ bare) < 0.99
    assert index.document("form").rows == _form().rows


def test_a_sentence_stored_before_rows_existed_reads_as_a_sentence() -> None:
    old = Record(
        "d#sentence-0", "It weighs 760 kilograms.", {"doc_id": "d", "start": 0, "end": 24}, vector=np.ones(2)
    )
    sentence = SentenceVector.from_record(old)
    assert (sentence.role, sentence.headers, sentence.reading) == ("sentence", (), "It weighs 760 kilograms.")


def test_reingesting_with_rows_replaces_the_document(tmp_path: Path, embedder: Any) -> None:
    index = Index(IndexConfig(home=tmp_path), embedder=embedder)
    index.ingest_documents([_form(rows=[])])
    again = index.ingest_documents([_form(rows=[])])
    assert again.unchanged == ["form"]
    report = index.ingest_documents([_form()])
    assert report.replaced == ["form"]
    roles = {s.role for r in index.store.get("sentences", where={"doc_id": "form"}) for s in unpack(r)}
    assert roles == {"sentence", "row"}
