"""Sentence packs: a document's sentences stored as a few records, read back exactly; indexes written in
the layouts before (a pack per chunk, a record per sentence) still read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.config import IndexConfig
from retrieval.hits import SentenceVector
from retrieval.ids import unit_id
from retrieval.index import Index
from retrieval.models import Document
from retrieval.packs import PACK_SENTENCES, document_packs, pack_metadata, unpack
from retrieval.store import Record

TEXT = (
    "Ptolemy V issued the decree in 196 BC. "
    "The stele's text is in three scripts: hieroglyphic, Demotic and Greek. "
    "Champollion read the cartouches in 1822."
)


def test_a_pack_gives_back_its_sentences_and_their_exact_vectors() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((2, 384)).astype(np.float32)
    sentences = [
        SentenceVector("d#t0", "d", "Ptolemy's décret — 196 BC.", 0, 26, vectors[0]),
        SentenceVector(
            "d#t1", "d", "Rosetta | 760 kg", 27, 43, vectors[1], role="row", headers=("Stone", "Weight")
        ),
    ]
    record = Record(id="d#c0", text="", metadata=pack_metadata("d", sentences))
    back = unpack(record)
    assert [(s.sentence_id, s.doc_id, s.text, s.start, s.end, s.role, s.headers) for s in back] == [
        (s.sentence_id, s.doc_id, s.text, s.start, s.end, s.role, s.headers) for s in sentences
    ]
    for got, sent in zip(back, sentences, strict=True):
        assert got.vector.dtype == np.float32
        np.testing.assert_array_equal(got.vector, sent.vector)
    assert unpack(Record(id="d#c1", text="", metadata=pack_metadata("d", []))) == []


def _index(home: Path, embedder: Any) -> Index:
    index = Index(IndexConfig(home=home), embedder=embedder)
    index.ingest_documents([Document(doc_id="stone", title="Rosetta Stone", text=TEXT, source="stone.txt")])
    return index


def test_a_long_document_s_sentences_are_packed_in_parts_of_bounded_size() -> None:
    rng = np.random.default_rng(3)
    count = 2 * PACK_SENTENCES + 6
    vectors = rng.standard_normal((count, 8)).astype(np.float32)
    sentences = [
        SentenceVector(f"d#t{i}", "d", f"Sentence {i}.", 20 * i, 20 * i + 12, vectors[i])
        for i in range(count)
    ]
    packs = document_packs("d", sentences)
    assert [pack_id for pack_id, _ in packs] == ["d#p0", "d#p1", "d#p2"]
    parts = [unpack(Record(id=pack_id, text="", metadata=metadata)) for pack_id, metadata in packs]
    assert [len(part) for part in parts] == [PACK_SENTENCES, PACK_SENTENCES, 6]
    back = [s for part in parts for s in part]
    assert [s.sentence_id for s in back] == [s.sentence_id for s in sentences]
    np.testing.assert_array_equal(np.stack([s.vector for s in back]), vectors)
    assert document_packs("d", []) == []


def _store_as_a_record_per_sentence(index: Index, sentences: list[SentenceVector]) -> None:
    index.store.upsert(
        "sentences",
        ids=[unit_id("stone", "sentence", i) for i in range(len(sentences))],
        texts=[s.text for s in sentences],
        metadatas=[{"doc_id": "stone", "start": s.start, "end": s.end} for s in sentences],
        vectors=np.stack([s.vector for s in sentences]),
    )


def _store_as_a_pack_per_chunk(index: Index, sentences: list[SentenceVector]) -> None:
    chunk = index.chunks_of("stone")[0]
    index.store.upsert(
        "sentences",
        ids=[chunk.chunk_id],
        texts=[""],
        metadatas=[pack_metadata("stone", sentences)],
        vectors=index.chunk_vectors([chunk.chunk_id]),
    )


@pytest.mark.parametrize("layout", [_store_as_a_record_per_sentence, _store_as_a_pack_per_chunk])
def test_a_document_stored_in_an_earlier_layout_reads_the_same(
    tmp_path: Path, embedder: Any, layout: Any
) -> None:
    index = _index(tmp_path, embedder)
    (chunk,) = index.chunks_of("stone")
    packed = index.sentences_of([chunk])[chunk.chunk_id]
    assert [s.text for s in packed] == [
        "Ptolemy V issued the decree in 196 BC.",
        "The stele's text is in three scripts: hieroglyphic, Demotic and Greek.",
        "Champollion read the cartouches in 1822.",
    ]
    index.store.delete("sentences", {"doc_id": "stone"})
    layout(index, packed)
    earlier = index.sentences_of([chunk])[chunk.chunk_id]
    assert [(s.sentence_id, s.text, s.start, s.end) for s in earlier] == [
        (s.sentence_id, s.text, s.start, s.end) for s in packed
    ]
    for old, new in zip(earlier, packed, strict=True):
        np.testing.assert_allclose(old.vector, new.vector, atol=1e-6)


def test_sentences_of_a_document_without_any_read_as_none(tmp_path: Path, embedder: Any) -> None:
    index = Index(IndexConfig(home=tmp_path, embed_sentences=False), embedder=embedder)
    index.ingest_documents([Document(doc_id="stone", title="Rosetta Stone", text=TEXT, source="stone.txt")])
    (chunk,) = index.chunks_of("stone")
    assert index.sentences_of([chunk]) == {chunk.chunk_id: []}
    assert index.store.count("sentences") == 0
