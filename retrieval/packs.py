"""Sentence packs: a chunk's sentences and their vectors, stored as one record of the sentences collection.

Sentences are read a document at a time and never searched by vector, yet a Chroma record each made Chroma
log, index and write every one of them beside the model's pass: on nih-protocols that was 5,888 records
against 873 chunks, and the CPU Chroma took slowed the model's two threads by a fifth. A pack is one record
per chunk, under the chunk's id and with the chunk's vector, holding the sentences whose first holding chunk
it is. A sentence that no chunk holds whole is never read (a chunk's sentences are the ones inside it) and
is not stored.
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

_VECTOR_TYPE = np.dtype("<f4")


def pack_metadata(doc_id: str, sentences: Sequence[SentenceVector]) -> Metadata:
    """A pack's metadata: its document, its sentences' places and texts, and their float32 vectors."""
    rows = [[s.sentence_id, s.start, s.end, s.role, list(s.headers), s.text] for s in sentences]
    vectors = np.asarray([s.vector for s in sentences], dtype=_VECTOR_TYPE)
    return {
        "doc_id": doc_id,
        "sentences": json.dumps(rows, ensure_ascii=False),
        "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
    }


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
