"""Document profiles made without an LLM: a centroid, an extractive summary and keywords."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from retrieval.models import Unit
from retrieval.textutil import content_words


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of some unit vectors (zeros for none)."""
    if len(vectors) == 0:
        return np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0, dtype=np.float32)
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def summarize(
    sentences: Sequence[Unit], vectors: np.ndarray, center: np.ndarray, *, max_words: int = 80
) -> tuple[str, list[int]]:
    """The sentences most central to the document (closest to its centroid), in document order, with their
    positions: their mean embedding is the document's profile vector, so a profile costs no model call."""
    if not sentences:
        return "", []
    if len(vectors) == len(sentences) and center.size:
        order = np.argsort(-(vectors @ center), kind="stable")
    else:
        order = np.arange(len(sentences))
    chosen: list[int] = []
    words = 0
    for i in order:
        n = len(sentences[int(i)].text.split())
        if sentences[int(i)].text.startswith("#") or n < 4:
            continue
        if chosen and words + n > max_words:
            continue
        chosen.append(int(i))
        words += n
        if words >= max_words:
            break
    chosen.sort()
    return " ".join(sentences[i].text for i in chosen), chosen


def keywords(title: str, text: str, *, k: int = 12) -> list[str]:
    """The most frequent content words, title words counted extra."""
    counts: Counter[str] = Counter()
    for weight, source in ((1, text), (3, title)):
        for word in content_words(source):
            if len(word) > 2 and not word.isdigit():
                counts[word] += weight
    return [word for word, _ in counts.most_common(k)]
