"""Sentence packs: a document's sentences and their vectors, stored as a few records of the sentences
collection.

Sentences are read a document at a time and never searched by vector, yet every Chroma record costs Chroma
CPU to log, index and write, beside the model's pass at ingest. A record per sentence (nih-protocols: 5,888)
slowed the model's two threads by a fifth; a pack per chunk (962) still cost 2.2 CPU s of Chroma's writes
there, a pack per document 0.5 s. So a document's sentences go in packs of at most ``PACK_SENTENCES``
(which bounds one record's size for a Chroma server), each with the document's centroid as its vector,
which Chroma needs and nothing searches. A pack holds the sentences that some chunk holds whole; the others
are never read (a chunk's sentences are the ones inside it) and are not stored.

Indexes written before keep their layouts, and :func:`stored_sentences` reads all three: a pack per
document, a pack per chunk, a record per sentence.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrieval.hits import SentenceVector

if TYPE_CHECKING:
    from retrieval.store import Metadata, Record

PACK_SENTENCES = 512
_VECTOR_TYPE = np.dtype("<f4")


def document_packs(doc_id: str, sentences: Sequence[SentenceVector]) -> list[tuple[str, Metadata]]:
    """A document's packs with their ids: its sentences in text order, at most ``PACK_SENTENCES`` a pack."""
    return [
        (
            f"{doc_id}#p{first // PACK_SENTENCES}",
            pack_metadata(doc_id, sentences[first : first + PACK_SENTENCES]),
        )
        for first in range(0, len(sentences), PACK_SENTENCES)
    ]


def pack_metadata(doc_id: str, sentences: Sequence[SentenceVector]) -> Metadata:
    """A pack's metadata: its document, its sentences' places and texts, and their float32 vectors."""
    rows = [[s.sentence_id, s.start, s.end, s.role, list(s.headers), s.text] for s in sentences]
    vectors = np.asarray([s.vector for s in sentences], dtype=_VECTOR_TYPE)
    return {
        "doc_id": doc_id,
        "sentences": json.dumps(rows, ensure_ascii=False),
        "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
    }


def stored_sentences(records: Sequence[Record]) -> list[SentenceVector]:
    """The sentences of records of the sentences collection, packs or (stored before packs, read with their
    vectors) records of one sentence each."""
    return [
        sentence
        for record in records
        for sentence in (
            unpack(record) if "vectors" in record.metadata else [SentenceVector.from_record(record)]
        )
    ]


def unpack(record: Record) -> list[SentenceVector]:
    """The sentences of a stored pack, with their vectors."""
    meta = record.metadata
    rows = json.loads(str(meta["sentences"]))
    if not rows:
        return []
    vectors = np.frombuffer(base64.b64decode(str(meta["vectors"])), dtype=_VECTOR_TYPE).reshape(len(rows), -1)
    return [
        SentenceVector(
            sentence_id,
            str(meta["doc_id"]),
            text,
            start,
            end,
            vectors[i].astype(np.float32),
            role="row" if role == "row" else "sentence",
            headers=tuple(headers),
        )
        for i, (sentence_id, start, end, role, headers, text) in enumerate(rows)
    ]
