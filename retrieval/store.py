"""Chroma behind a thin class: four collections whose metadata make every hit traceable."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import chromadb
import httpx
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


def _server_address(config: IndexConfig) -> str:
    return f"http://{config.chroma_host}:{config.chroma_port}"


def _unreachable(config: IndexConfig, exc: Exception) -> RetrievalError:
    """One line naming the server, what failed and what to do."""
    where = f"the Chroma server at {_server_address(config)}"
    if isinstance(exc, httpx.TimeoutException):
        return RetrievalError(
            f"{where} did not answer within {config.chroma_timeout_s:g}s; check that it is running and not "
            "stuck (restart `chroma run`), or raise MULTIGRAIN_INDEX__CHROMA_TIMEOUT_S if it is only slow"
        )
    return RetrievalError(
        f"{where} cannot be reached ({type(exc).__name__}: {exc}); start it (`chroma run`) or unset "
        "MULTIGRAIN_CHROMA_HOST to use the embedded store"
    )


def _client(config: IndexConfig) -> Any:
    if config.chroma_host:
        return _server_client(config)
    config.home.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(config.home / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )


def _server_client(config: IndexConfig) -> Any:
    """An HTTP client of the Chroma server whose every request gives up after ``chroma_timeout_s``."""
    try:
        # The client's constructor already sends requests, unbounded: a bounded heartbeat goes first.
        httpx.get(f"{_server_address(config)}/api/v2/heartbeat", timeout=config.chroma_timeout_s)
        client: Any = chromadb.HttpClient(
            host=str(config.chroma_host),
            port=config.chroma_port,
            settings=ChromaSettings(anonymized_telemetry=False),
        )
    except httpx.TransportError as exc:
        raise _unreachable(config, exc) from exc
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__
        raise _unreachable(config, cause if isinstance(cause, httpx.TransportError) else exc) from exc
    # SEE: https://github.com/chroma-core/chroma/issues/1227 - chromadb builds its httpx session with
    # timeout=None and has no setting for it, so the session's timeout is set here.
    client._server._session.timeout = httpx.Timeout(config.chroma_timeout_s)
    return client


class ChromaStore:
    """The four collections of one index, in an embedded or a server Chroma."""

    def __init__(self, config: IndexConfig) -> None:
        self._config = config
        self._client = _client(config)
        self._collections, self._max_batch = self._open_collections()

    def _open_collections(self) -> tuple[dict[CollectionName, Any], int]:
        with self._reaching():
            collections = {
                name: self._client.get_or_create_collection(
                    f"{self._config.collection_prefix}-{name}",
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                )
                for name in COLLECTIONS
            }
            return collections, int(self._client.get_max_batch_size())

    def reopen(self) -> None:
        """Drop what this process's Chroma holds in memory and read the store afresh.

        An embedded Chroma keeps each collection's vector index in memory and never sees what another
        process wrote until it is reopened (the system is shared by every client of one path in a
        process, so it is read afresh once the last of them closes). A server's clients are never stale.
        """
        if self._config.chroma_host:
            return
        self._client.close()
        self._client = _client(self._config)
        self._collections, self._max_batch = self._open_collections()

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn a Chroma server's network failure into one :class:`RetrievalError` line."""
        try:
            yield
        except httpx.TransportError as exc:
            raise _unreachable(self._config, exc) from exc

    def count(self, name: CollectionName) -> int:
        """Number of items in a collection."""
        with self._reaching():
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
            with self._reaching():
                collection.upsert(
                    ids=list(ids[lo:hi]),
                    documents=list(texts[lo:hi]),
                    metadatas=list(metadatas[lo:hi]),
                    embeddings=vectors[lo:hi],
                )

    def delete(self, name: CollectionName, where: Mapping[str, Any]) -> None:
        """Delete every item matching a metadata filter."""
        with self._reaching():
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
        """Items by id or by filter, in the order Chroma returns them; ids it does not hold are left out.

        An empty id list asks for nothing (Chroma would refuse it), and a repeated id is asked for once.
        """
        wanted = list(dict.fromkeys(ids)) if ids is not None else None
        if wanted == []:
            return []
        include = (
            ["metadatas"] + (["documents"] if with_texts else []) + (["embeddings"] if with_vectors else [])
        )
        with self._reaching():
            result = self._collections[name].get(
                ids=wanted, where=dict(where) if where else None, include=include
            )
        return _records(result["ids"], result, None)

    def iterate(self, name: CollectionName, *, page: int = 5000, with_texts: bool = True) -> Iterator[Record]:
        """Every item of a collection, page by page."""
        include = ["metadatas"] + (["documents"] if with_texts else [])
        offset = 0
        while True:
            with self._reaching():
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
        with self._reaching():
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
    """Chroma's columns as records; an id without metadata (its vector index is behind a deletion made
    by another process) is left out."""
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
        if metadatas is None or metadatas[i] is not None
    ]
