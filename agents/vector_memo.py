"""Embeddings kept across an agent's questions, so a text is read by the model once, not once per question.

Over late (pooled) sentence vectors every question reads its likeliest sentences alone (see
:mod:`agents.nodes._readings`), and questions about the same documents read the same sentences again. A
text's vector depends on the text and the embedder alone, never on the question or on what the index holds,
so a vector kept from an earlier question is the one the model would give now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

KEPT_VECTORS = 20_000
"""How many texts' vectors are kept, the least recently used dropped first: about 30 MB at 384 dimensions,
the sentences of some 500 long documents."""


class VectorMemo:
    """The most recently used texts' embeddings, shared by the questions (and threads) of one agent."""

    def __init__(self, limit: int = KEPT_VECTORS) -> None:
        self._limit = limit
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def vectors(
        self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Each distinct text's vector: kept ones as they are, the rest from one ``embed`` call, then kept."""
        wanted = list(dict.fromkeys(texts))
        with self._lock:
            found = {t: self._vectors[t] for t in wanted if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [t for t in wanted if t not in found]
        if missing:
            # Rows copied out of the batch, so an evicted text's batch is freed with it.
            found |= {t: np.array(row) for t, row in zip(missing, embed(missing), strict=True)}
            with self._lock:
                self._vectors.update((t, found[t]) for t in missing)
                while len(self._vectors) > self._limit:
                    self._vectors.popitem(last=False)
        return found
