"""Chroma behind a thin class: four collections whose metadata make every hit traceable."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from retrieval.config import IndexConfig
from retrieval.errors import RetrievalError

CollectionName = Literal["documents", "centroids", "chunks", "sentences"]
COLLECTIONS: tuple[CollectionName, ...] = ("documents", "centroids", "chunks", "sentences")
Metadata = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class Record:
    """One stored item: id, text, metadata and, when asked for, its vector."""

    id: str
    text: str
    metadata: Mapping[str, Any]
    score: float = 0.0
    vector: np.ndarray | None = None


def _client(config: IndexConfig) -> Any:
    settings = ChromaSettings(anonymized_telemetry=False)
    if config.chroma_host:
        try:
            return chromadb.HttpClient(host=config.chroma_host, port=config.chroma_port, settings=settings)
        except Exception as exc:
            raise RetrievalError(
                f"cannot reach the Chroma server at {config.chroma_host}:{config.chroma_port} ({exc}); "
                "start it (`chroma run`) or unset MULTIGRAIN_CHROMA_HOST to use the embedded store"
            ) from exc
    config.home.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(config.home / "chroma"), settings=settings)


class ChromaStore:
    """The four collections of one index, in an embedded or a server Chroma."""

    def __init__(self, config: IndexConfig) -> None:
        self._client = _client(config)
        self._collections = {
            name: self._client.get_or_create_collection(
                f"{config.collection_prefix}-{name}",
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
            for name in COLLECTIONS
        }
        self._max_batch = int(self._client.get_max_batch_size())

    def count(self, name: CollectionName) -> int:
        """Number of items in a collection."""
        return int(self._collections[name].count())

    def upsert(
        self,
        name: CollectionName,
        *,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Metadata],
        vectors: np.ndarray,
    ) -> None:
        """Write items, in batches Chroma accepts."""
        collection = self._collections[name]
        for lo in range(0, len(ids), self._max_batch):
            hi = lo + self._max_batch
            collection.upsert(
                ids=list(ids[lo:hi]),
                documents=list(texts[lo:hi]),
                metadatas=list(metadatas[lo:hi]),
                embeddings=vectors[lo:hi],
            )

    def delete(self, name: CollectionName, where: Mapping[str, Any]) -> None:
        """Delete every item matching a metadata filter."""
        self._collections[name].delete(where=dict(where))

    def get(
        self,
        name: CollectionName,
        *,
        ids: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
        with_texts: bool = True,
    ) -> list[Record]:
        """Items by id or by filter, in the order Chroma returns them."""
        include = (
            ["metadatas"] + (["documents"] if with_texts else []) + (["embeddings"] if with_vectors else [])
        )
        result = self._collections[name].get(
            ids=list(ids) if ids is not None else None, where=dict(where) if where else None, include=include
        )
        return _records(result["ids"], result, None)

    def iterate(self, name: CollectionName, *, page: int = 5000, with_texts: bool = True) -> Iterator[Record]:
        """Every item of a collection, page by page."""
        include = ["metadatas"] + (["documents"] if with_texts else [])
        offset = 0
        while True:
            result = self._collections[name].get(include=include, limit=page, offset=offset)
            if not result["ids"]:
                return
            yield from _records(result["ids"], result, None)
            offset += len(result["ids"])

    def query(
        self, name: CollectionName, vector: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None
    ) -> list[Record]:
        """The k nearest items to a vector, with cosine similarity as score."""
        return self.query_many(name, np.asarray(vector)[None, :], k, where=where)[0]

    def query_many(
        self, name: CollectionName, vectors: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None
    ) -> list[list[Record]]:
        """The k nearest items to each of several vectors in one call, so a filter is evaluated once."""
        if k <= 0 or len(vectors) == 0:
            return [[] for _ in vectors]
        result = self._collections[name].query(
            query_embeddings=np.asarray(vectors, dtype=np.float32),
            n_results=k,
            where=dict(where) if where else None,
            include=["metadatas", "documents", "distances"],
        )
        return [
            _records(
                result["ids"][i],
                {"documents": result["documents"][i], "metadatas": result["metadatas"][i]},
                result["distances"][i],
            )
            for i in range(len(vectors))
        ]


def _records(
    ids: Sequence[str], result: Mapping[str, Any], distances: Sequence[float] | None
) -> list[Record]:
    texts = result.get("documents")
    metadatas = result.get("metadatas")
    vectors = result.get("embeddings")
    return [
        Record(
            id=item_id,
            text=texts[i] if texts is not None else "",
            metadata=metadatas[i] if metadatas is not None else {},
            score=1.0 - float(distances[i]) if distances is not None else 0.0,
            vector=np.asarray(vectors[i], dtype=np.float32) if vectors is not None else None,
        )
        for i, item_id in enumerate(ids)
    ]
