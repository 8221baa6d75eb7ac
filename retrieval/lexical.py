"""BM25 over chunks and over whole documents (bm25s), rebuilt from the store whenever the store changed.

The store is the source of truth; this index is a cache on disk keyed by a fingerprint of the stored
documents, so it can never drift from Chroma, even after a crash in the middle of an ingestion.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bm25s
    import Stemmer


@functools.lru_cache(maxsize=1)
def stemmer() -> Stemmer.Stemmer:
    """The English Snowball stemmer, built once per process."""
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed word tokens: the BM25 vocabulary."""
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False
    )


@dataclass
class LexicalIndex:
    """One BM25 index over a list of texts, each with an id and the id of its document."""

    ids: list[str]
    doc_ids: list[str]
    retriever: bm25s.BM25 | None

    def __post_init__(self) -> None:
        self._doc_codes = {d: i for i, d in enumerate(dict.fromkeys(self.doc_ids))}
        self._doc_of_row = np.fromiter((self._doc_codes[d] for d in self.doc_ids), dtype=np.int64)

    @classmethod
    def build(cls, ids: list[str], doc_ids: list[str], texts: Sequence[str]) -> LexicalIndex:
        """Index the texts; an empty list gives an index that finds nothing."""
        if not texts:
            return cls(ids=[], doc_ids=[], retriever=None)
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(tokenize(texts), show_progress=False)
        return cls(ids=ids, doc_ids=doc_ids, retriever=retriever)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text for the query (zeros when no query term is known)."""
        if self.retriever is None:
            return np.zeros(0, dtype=np.float32)
        vocab = self.retriever.vocab_dict
        terms = [t for t in tokenize([query])[0] if t in vocab]
        if not terms:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores(terms), dtype=np.float32)

    def text_share(self, terms: Iterable[str]) -> dict[str, float]:
        """For each stemmed term, the share of the indexed texts that hold it (0 for an unknown term)."""
        if self.retriever is None:
            return dict.fromkeys(terms, 0.0)
        vocab, pointers = self.retriever.vocab_dict, self.retriever.scores["indptr"]
        total = max(1, int(self.retriever.scores["num_docs"]))
        held = {t: int(pointers[vocab[t] + 1] - pointers[vocab[t]]) if t in vocab else 0 for t in terms}
        return {t: count / total for t, count in held.items()}

    def search(self, query: str, k: int, *, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """The k best (id, score) pairs with a positive score, optionally only inside the given documents."""
        scores = self.scores(query)
        if scores.size == 0:
            return []
        if doc_ids is not None:
            codes = [self._doc_codes[d] for d in doc_ids if d in self._doc_codes]
            scores = np.where(np.isin(self._doc_of_row, codes), scores, 0.0)
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (replacing what was there)."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / "ids.json").write_text(json.dumps({"ids": self.ids, "doc_ids": self.doc_ids}))
        if self.retriever is not None:
            self.retriever.save(str(folder / "bm25"), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        names = json.loads((folder / "ids.json").read_text())
        retriever = None
        if (folder / "bm25").exists():
            import bm25s

            retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
        return cls(ids=names["ids"], doc_ids=names["doc_ids"], retriever=retriever)
