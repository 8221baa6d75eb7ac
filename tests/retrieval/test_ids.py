"""Unit ids are built and read back by one helper, also when a document id holds '#'."""

from __future__ import annotations

import pytest

from retrieval.config import ChunkingConfig, IndexConfig
from retrieval.ids import parse_unit_id, unit_id
from retrieval.index import Index
from retrieval.models import Document


@pytest.mark.parametrize(
    ("doc_id", "kind", "ordinal", "expected"),
    [
        ("notes.md", "chunk", 3, "notes.md#c3"),
        ("/data/corpus.jsonl#doc-7", "sentence", 12, "/data/corpus.jsonl#doc-7#t12"),
        ("a#b#c", "section", 0, "a#b#c#s0"),
    ],
)
def test_a_unit_id_reads_back_as_what_built_it(doc_id, kind, ordinal, expected):
    assert unit_id(doc_id, kind, ordinal) == expected
    assert parse_unit_id(expected) == (doc_id, kind, ordinal)


@pytest.mark.parametrize("value", ["notes.md", "notes.md#", "notes.md#x3", "notes.md#c", "notes.md#c-1"])
def test_what_is_not_a_unit_id_is_refused(value):
    with pytest.raises(ValueError, match="not a unit id"):
        parse_unit_id(value)


def test_neighbours_of_a_chunk_of_a_corpus_line_stay_in_its_document(tmp_path, embedder):
    sentences = " ".join(f"Keeper number {i} trimmed the wick of the lighthouse lamp." for i in range(30))
    config = IndexConfig(home=tmp_path, chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=0))
    index = Index(config, embedder=embedder)
    doc_id = f"{tmp_path / 'corpus.jsonl'}#keepers"
    index.ingest_documents([Document(doc_id=doc_id, title="Keepers", text=sentences, source="corpus.jsonl")])
    middle = index.chunks([unit_id(doc_id, "chunk", 1)])[0]

    around = index.neighbours(middle)

    assert [h.chunk_id for h in around] == [unit_id(doc_id, "chunk", 0), unit_id(doc_id, "chunk", 2)]
    assert all(h.doc_id == doc_id for h in around)
    assert [h.chunk_id for h in index.neighbours(around[0])] == [middle.chunk_id]
