"""How much to trust BM25 and dense search on this corpus, estimated from the corpus alone.

No labels: the corpus poses its own questions by the inverse cloze task (Lee et al., 2019). A sentence
taken out of its chunk is the query, and what is left of the chunk is the passage it should find, among the
chunks that BM25 and dense search bring up for it elsewhere in the corpus. Each method's mean reciprocal
rank of that passage says how well it finds the context of a statement on this corpus: on forms and
reports that differ by names and numbers BM25 wins, on paraphrase-rich prose dense search holds its own.
The weights are those ranks relative to the better one, so the better method keeps weight 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.lexical import LexicalIndex
from retrieval.textutil import words

if TYPE_CHECKING:
    from retrieval.hits import ChunkHit, SentenceVector
    from retrieval.index import Index

_ProbeRanks = tuple[int, int]
"""The held-out passage's rank by BM25 and by dense search."""
_Probe = tuple["ChunkHit", "SentenceVector", str]
"""A probe chunk, the sentence taken out of it, and the chunk's text without that sentence."""

WEIGHTS_FILE = "signal_weights.json"
PROBES = 64
"""Pseudo-queries per estimate: enough for a stable mean, a second or two of work."""
CANDIDATES = 20
"""Chunks each method brings up per pseudo-query; the held-out passage competes with their union."""
MIN_PROBE_WORDS = 6
MIN_SENTENCES = 3
"""A probe chunk needs sentences left around the one taken out."""
FLOOR = 0.25
"""No method's weight drops below this: a corpus sample is evidence, not proof."""
SHARPNESS = 3
"""Reciprocal ranks differ less than the methods' worth in fusion: a ratio of 0.9 becomes a weight of 0.73."""
_METHOD = f"inverse-cloze probes={PROBES} sharpness={SHARPNESS} floor={FLOOR} probe embedded alone"
"""What the saved weights were estimated with: other settings (a new version) estimate them again."""


@dataclass(frozen=True)
class SignalWeights:
    """Fusion weights of BM25 and dense search, and the figures behind them."""

    bm25: float = 1.0
    dense: float = 1.0
    probes: int = 0
    bm25_mrr: float = 0.0
    dense_mrr: float = 0.0

    @classmethod
    def from_ranks(cls, ranks: Sequence[_ProbeRanks]) -> SignalWeights:
        """Weights from the held-out passage's rank (1 = first) under each method, probe by probe."""
        if not ranks:
            return cls()
        bm25, dense = (float(np.mean([1 / r for r in column])) for column in zip(*ranks, strict=True))
        best = max(bm25, dense) or 1.0
        return cls(
            bm25=_weight(bm25 / best),
            dense=_weight(dense / best),
            probes=len(ranks),
            bm25_mrr=round(bm25, 4),
            dense_mrr=round(dense, 4),
        )


def _weight(ratio: float) -> float:
    """A measured ratio of reciprocal ranks as a weight: sharpened, at most 1, at least FLOOR."""
    return round(max(FLOOR, min(1.0, ratio) ** SHARPNESS), 3)


def estimate_signal_weights(index: Index, *, probes: int = PROBES) -> SignalWeights:
    """Measure BM25 and dense search on inverse-cloze probes drawn evenly from the stored chunks."""
    cases = _probes(index, probes)
    ranks: list[_ProbeRanks] = []
    if cases:
        # The probe is embedded alone: a stored late sentence vector was pooled in its own chunk's
        # context, so it would find that context by the very text it was taken out of (nih-protocols:
        # dense MRR 0.81 against 0.24 for the sentence alone).
        vectors = index.embedder.embed_documents(
            [context for _, _, context in cases] + [sentence.reading for _, sentence, _ in cases]
        )
        contexts, alone = vectors[: len(cases)], vectors[len(cases) :]
        for (chunk, sentence, context), context_vector, probe in zip(cases, contexts, alone, strict=True):
            rivals = _rivals(index, chunk, (sentence.text, probe))
            if rivals:
                ranks.append(_probe_ranks(index, (sentence.text, probe), (context, context_vector), rivals))
    return SignalWeights.from_ranks(ranks)


def _probe_ranks(
    index: Index, sentence: tuple[str, np.ndarray], context: tuple[str, np.ndarray], rivals: list[ChunkHit]
) -> _ProbeRanks:
    """The held-out passage's rank by BM25 and by dense search among the rivals."""
    texts = [context[0]] + [f"{h.title}\n{h.text}" for h in rivals]
    ids = [str(i) for i in range(len(texts))]
    rival_vectors = index.chunk_vectors([h.chunk_id for h in rivals])
    vectors = np.vstack([context[1][None, :], rival_vectors]) if len(rival_vectors) else context[1][None, :]
    bm25 = LexicalIndex.build(ids, ids, texts).scores(sentence[0])
    return _rank_of_first(bm25), _rank_of_first(vectors @ sentence[1])


def cached_signal_weights(index: Index, folder: Path, fingerprint: str) -> SignalWeights:
    """The weights saved for this state of the store, estimated and saved when there are none."""
    path = folder / WEIGHTS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == fingerprint and saved.get("method") == _METHOD:
            return SignalWeights(**saved["weights"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    weights = estimate_signal_weights(index)
    folder.mkdir(parents=True, exist_ok=True)
    saved = {"fingerprint": fingerprint, "method": _METHOD, "weights": asdict(weights)}
    path.write_text(json.dumps(saved), encoding="utf-8")
    return weights


def _probes(index: Index, limit: int) -> list[_Probe]:
    """(chunk, sentence taken out, chunk text without it) for chunks spread evenly over the corpus."""
    chunk_ids = sorted(index.side.current().chunks.ids, key=_stable_order)
    cases: list[_Probe] = []
    for start in range(0, len(chunk_ids), 4 * limit):
        chunks = index.chunks(chunk_ids[start : start + 4 * limit])
        for chunk, sentences in index.sentences_of(chunks).items():
            hit = next(c for c in chunks if c.chunk_id == chunk)
            case = _held_out(hit, sentences)
            if case is not None:
                cases.append(case)
            if len(cases) == limit:
                return cases
    return cases


def _stable_order(chunk_id: str) -> str:
    """A fixed pseudo-random order of chunks, the same on every run."""
    return hashlib.sha256(chunk_id.encode()).hexdigest()


def _held_out(chunk: ChunkHit, sentences: list[SentenceVector]) -> _Probe | None:
    """The chunk's middle prose sentence and the chunk's text without it, if the chunk has enough of both."""
    usable = [s for s in sentences if len(words(s.text)) >= MIN_PROBE_WORDS]
    if len(sentences) < MIN_SENTENCES or not usable:
        return None
    sentence = usable[len(usable) // 2]
    begin, end = sentence.start - chunk.start, sentence.end - chunk.start
    context = f"{chunk.title}\n{chunk.text[:begin]} {chunk.text[end:]}"
    return chunk, sentence, context


def _rivals(index: Index, chunk: ChunkHit, sentence: tuple[str, np.ndarray]) -> list[ChunkHit]:
    """What the methods find for the sentence (its text and its vector alone) elsewhere: chunks that do
    not hold it."""
    text, vector = sentence
    found = index.bm25_chunks(text, CANDIDATES) + index.dense_chunks(vector, CANDIDATES)
    unique = {h.chunk_id: h for h in found if h.doc_id != chunk.doc_id or text not in h.text}
    unique.pop(chunk.chunk_id, None)
    return list(unique.values())


def _rank_of_first(scores: np.ndarray) -> int:
    """1 + how many candidates score above the held-out passage (index 0); ties count against it."""
    return 1 + int(np.sum(scores[1:] >= scores[0]))
