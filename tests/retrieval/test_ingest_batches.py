"""How ingestion cuts its last batch so that the final write overlaps the model's last pass."""

from __future__ import annotations

import pytest

from retrieval.ingest import _halves
from retrieval.models import ChunkedDocument, Document, Unit


def _item(doc_id: str, chunks: int) -> ChunkedDocument:
    document = Document(doc_id=doc_id, title=doc_id, text="x" * chunks, source="test")
    units = [
        Unit(unit_id=f"{doc_id}#c{n}", doc_id=doc_id, kind="chunk", text="x", start=n, end=n + 1, ordinal=n)
        for n in range(chunks)
    ]
    return ChunkedDocument(document=document, sections=[], chunks=units, sentences=[])


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([3, 3, 3, 3], [["a", "b"], ["c", "d"]]),
        ([10, 1, 1, 1], [["a"], ["b", "c", "d"]]),
        ([1, 1, 1, 10], [["a", "b", "c", "d"]]),
        ([5], [["a"]]),
        ([], []),
    ],
)
def test_the_last_batch_is_cut_where_half_its_chunks_are_done(
    sizes: list[int], expected: list[list[str]]
) -> None:
    batch = [_item(name, size) for name, size in zip("abcd", sizes, strict=False)]
    parts = _halves(batch)
    assert [[item.document.doc_id for item in part] for part in parts] == expected
    assert [item for part in parts for item in part] == batch
