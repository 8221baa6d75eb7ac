"""A small real index (real Chroma, the real ONNX model) over given documents, for node tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrieval.config import ChunkingConfig, IndexConfig
from retrieval.index import Index
from retrieval.models import Document


def ingested_index(home: Path, embedder: Any, documents: Sequence[Document], *, chunk_tokens: int) -> Index:
    """An index at ``home`` holding ``documents``, cut into chunks of ``chunk_tokens`` without overlap."""
    config = IndexConfig(home=home, chunking=ChunkingConfig(chunk_tokens=chunk_tokens, overlap_tokens=0))
    index = Index(config, embedder=embedder)
    index.ingest_documents(documents)
    return index
