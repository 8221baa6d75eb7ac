"""The evaluation metrics of ``/work/shared/datasets/FORMAT.md``, as pure functions.

Every ``*_at_k`` metric and :func:`passage_metrics` share one scan per query: the rank at which each gold
document, evidence item or answer is first found, from which every ``k`` is a comparison. A metric that does
not apply to a query (no evidence text, no short answer, no citations) is None and left out of the mean.
"""

from __future__ import annotations

import functools
import math
import re
import string
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from evaluation.datasets import Evidence, Query

DEFAULT_KS = (1, 5, 10)
SHORT_ANSWER_CHARS = 80
SHORT_ITEM_TOKENS = 8
YES_NO_MAYBE = frozenset({"yes", "no", "maybe"})
PASSAGE_METRICS = ("doc_recall", "evidence_recall", "answer_hit")

_THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


class PassageLike(Protocol):
    """Anything with a document id and text: a :class:`Passage` or a ``retrieval.models.Unit``."""

    @property
    def doc_id(self) -> str:
        """The id of the document the passage comes from."""
        ...

    @property
    def text(self) -> str:
        """The passage's text."""
        ...


@dataclass(frozen=True)
class Passage:
    """A unit a system returned: a chunk, sentence or section of one document."""

    doc_id: str
    text: str


@functools.cache
def _punctuation_to_space() -> dict[int, str]:
    # Cached because scanning every code point takes ~0.2 s; the table is a constant of the Unicode database.
    # ASCII symbols such as "~" and "$" count as punctuation too, as in SQuAD's answer normalisation.
    unicode_punctuation = (chr(code) for code in range(sys.maxunicode + 1))
    marks = {char for char in unicode_punctuation if unicodedata.category(char).startswith("P")}
    return {ord(char): " " for char in marks | set(string.punctuation)}


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation (Unicode P* and ASCII) to spaces, runs of white space folded."""
    return " ".join(_tokens(text))


def _tokens(text: str) -> list[str]:
    return unicodedata.normalize("NFKC", text).lower().translate(_punctuation_to_space()).split()


def _padded(tokens: Sequence[str]) -> str:
    return f" {' '.join(tokens)} "


@dataclass(frozen=True)
class _ItemPattern:
    """An evidence item as the set of token runs, of the length required, that cover it."""

    doc_id: str
    run: int
    runs: frozenset[tuple[str, ...]]
    first_tokens: frozenset[str]

    def is_covered_by(self, doc_id: str, tokens: Sequence[str]) -> bool:
        if doc_id != self.doc_id:
            return False
        run = self.run
        return any(
            tokens[start] in self.first_tokens and tuple(tokens[start : start + run]) in self.runs
            for start in range(len(tokens) - run + 1)
        )


def _item_pattern(item: Evidence) -> _ItemPattern | None:
    tokens = _tokens(item.text)
    if not tokens:
        return None
    run = len(tokens) if len(tokens) < SHORT_ITEM_TOKENS else math.ceil(len(tokens) / 2)
    runs = frozenset(tuple(tokens[start : start + run]) for start in range(len(tokens) - run + 1))
    return _ItemPattern(item.doc_id, run, runs, frozenset(ngram[0] for ngram in runs))


def _evidence_patterns(query: Query) -> list[_ItemPattern]:
    return [pattern for item in query.evidence if (pattern := _item_pattern(item)) is not None]


def covers(passage_text: str, passage_doc_id: str, item: Evidence) -> bool:
    """Whether the passage, from the item's document, holds a contiguous run of half the item's tokens.

    Items of under 8 normalised tokens need all of them; a document-level item (no text) is never covered.
    """
    pattern = _item_pattern(item)
    return pattern is not None and pattern.is_covered_by(passage_doc_id, _tokens(passage_text))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be 1 or more, got {k}")


def _first_ranks(doc_ids: Iterable[str]) -> dict[str, int]:
    ranks: dict[str, int] = {}
    for rank, doc_id in enumerate(doc_ids):
        ranks.setdefault(doc_id, rank)
    return ranks


def _doc_ranks(doc_ids: Iterable[str], query: Query) -> list[int | None] | None:
    if not query.gold_doc_ids:
        return None
    first = _first_ranks(doc_ids)
    return [first.get(doc_id) for doc_id in sorted(query.gold_doc_ids)]


def _evidence_ranks(passages: Sequence[PassageLike], query: Query) -> list[int | None] | None:
    patterns = _evidence_patterns(query)
    if not patterns:
        return None
    ranks: list[int | None] = [None] * len(patterns)
    for rank, passage in enumerate(passages):
        tokens = _tokens(passage.text)
        for index, pattern in enumerate(patterns):
            if ranks[index] is None and pattern.is_covered_by(passage.doc_id, tokens):
                ranks[index] = rank
        if all(found is not None for found in ranks):
            break
    return ranks


def _short_answers(query: Query, *, keep_yes_no: bool) -> list[str]:
    answers = (normalize(answer) for answer in query.answers if len(answer.strip()) < SHORT_ANSWER_CHARS)
    return [answer for answer in answers if answer and (keep_yes_no or answer not in YES_NO_MAYBE)]


def _contains_any(text: str, normalized_phrases: Sequence[str]) -> bool:
    padded = _padded(_tokens(text))
    return any(f" {phrase} " in padded for phrase in normalized_phrases)


def _answer_rank(passages: Sequence[PassageLike], query: Query) -> tuple[bool, int | None]:
    answers = _short_answers(query, keep_yes_no=False)
    if not answers:
        return False, None
    rank = next((rank for rank, passage in enumerate(passages) if _contains_any(passage.text, answers)), None)
    return True, rank


def _recall(ranks: list[int | None] | None, k: int) -> float | None:
    if ranks is None:
        return None
    return sum(1 for rank in ranks if rank is not None and rank < k) / len(ranks)


def _hit(applies: bool, rank: int | None, k: int) -> float | None:
    if not applies:
        return None
    return 1.0 if rank is not None and rank < k else 0.0


@dataclass(frozen=True)
class _QueryRanks:
    """Where one query's gold documents, evidence items and answer were first found in a ranking."""

    docs: list[int | None] | None
    evidence: list[int | None] | None
    has_answer: bool
    answer: int | None

    @classmethod
    def of(cls, passages: Sequence[PassageLike], query: Query) -> _QueryRanks:
        has_answer, answer = _answer_rank(passages, query)
        docs = _doc_ranks((passage.doc_id for passage in passages), query)
        return cls(docs, _evidence_ranks(passages, query), has_answer, answer)

    def value(self, metric: str, k: int) -> float | None:
        if metric == "doc_recall":
            return _recall(self.docs, k)
        if metric == "evidence_recall":
            return _recall(self.evidence, k)
        return _hit(self.has_answer, self.answer, k)


def doc_recall_at_k(passages: Sequence[PassageLike], query: Query, k: int) -> float | None:
    """Share of the query's gold documents among the documents of the top-k passages; None without gold."""
    _check_k(k)
    return _recall(_doc_ranks((passage.doc_id for passage in passages[:k]), query), k)


def doc_recall_of_docs(doc_ids: Sequence[str], query: Query, k: int) -> float | None:
    """Share of the query's gold documents among the top-k routed documents; None without gold."""
    _check_k(k)
    return _recall(_doc_ranks(doc_ids[:k], query), k)


def evidence_recall_at_k(passages: Sequence[PassageLike], query: Query, k: int) -> float | None:
    """Share of the query's evidence items covered by some top-k passage; None without evidence text."""
    _check_k(k)
    return _recall(_evidence_ranks(passages[:k], query), k)


def answer_hit_at_k(passages: Sequence[PassageLike], query: Query, k: int) -> float | None:
    """1.0 if a top-k passage contains a short gold answer, else 0.0; None if none (yes/no/maybe aside)."""
    _check_k(k)
    applies, rank = _answer_rank(passages[:k], query)
    return _hit(applies, rank, k)


def answer_contains(answer_text: str, query: Query) -> float | None:
    """1.0 if the generated answer contains a short gold answer (whole tokens), else 0.0; None without one."""
    answers = _short_answers(query, keep_yes_no=True)
    if not answers:
        return None
    return 1.0 if _contains_any(answer_text, answers) else 0.0


def declined_share(declined: bool, query: Query) -> float | None:
    """1.0 if the agent declined an unanswerable query, else 0.0; None for a query the documents answer."""
    return (1.0 if declined else 0.0) if query.unanswerable else None


def answered_share(answered: bool, query: Query) -> float | None:
    """1.0 if the agent answered a query the documents answer, else 0.0; None for an unanswerable one."""
    return None if query.unanswerable else (1.0 if answered else 0.0)


def citation_precision(cited: Sequence[PassageLike], query: Query) -> float | None:
    """Share of the cited passages that come from a gold document; None without citations or gold."""
    if not cited or not query.gold_doc_ids:
        return None
    return sum(1 for passage in cited if passage.doc_id in query.gold_doc_ids) / len(cited)


def citation_evidence_recall(cited: Sequence[PassageLike], query: Query) -> float | None:
    """Share of the query's evidence items covered by some cited passage; None without evidence text."""
    return _recall(_evidence_ranks(cited, query), len(cited))


def _figure_tokens(text: str) -> list[str]:
    text = _THOUSANDS_SEPARATOR.sub("", unicodedata.normalize("NFKC", text))
    return _tokens("".join(" " if unicodedata.category(char) == "Sc" else char for char in text))


def fact_recall(answer_text: str, query: Query) -> float | None:
    """Share of the query's ``metadata.facts`` figures found in the answer; None without facts.

    Figures are compared after :func:`normalize`, with thousands separators and currency signs removed,
    so "$1,200" matches "1200 dollars" and "12.5%" matches "12.5 percent", as whole tokens.
    """
    facts = [tokens for fact in query.facts if (tokens := _figure_tokens(fact))]
    if not facts:
        return None
    padded = _padded(_figure_tokens(answer_text))
    return sum(1 for tokens in facts if _padded(tokens) in padded) / len(facts)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks, as numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def passage_metrics(
    ranked: Mapping[str, Sequence[PassageLike]],
    queries: Sequence[Query],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    prefix: str = "",
) -> dict[str, float]:
    """``doc_recall@k``, ``evidence_recall@k`` and ``answer_hit@k``, averaged over queries, keys prefixed.

    ``ranked`` maps query ids to ranked passages; a query missing from it counts as having retrieved nothing.
    A metric that applies to none of the queries is left out of the result.
    """
    for k in ks:
        _check_k(k)
    columns: dict[str, list[float | None]] = {}
    for query in queries:
        ranks = _QueryRanks.of(ranked.get(query.query_id, ())[: max(ks)], query)
        for name in PASSAGE_METRICS:
            for k in ks:
                columns.setdefault(f"{prefix}{name}@{k}", []).append(ranks.value(name, k))
    return _defined_means(columns)


def doc_metrics(
    routed: Mapping[str, Sequence[str]],
    queries: Sequence[Query],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    prefix: str = "",
) -> dict[str, float]:
    """``doc_recall@k`` of a routing stage's ranked document ids, averaged over queries, keys prefixed."""
    for k in ks:
        _check_k(k)
    columns: dict[str, list[float | None]] = {}
    for query in queries:
        doc_ranks = _doc_ranks(routed.get(query.query_id, ())[: max(ks)], query)
        for k in ks:
            columns.setdefault(f"{prefix}doc_recall@{k}", []).append(_recall(doc_ranks, k))
    return _defined_means(columns)


def _defined_means(columns: Mapping[str, Iterable[float | None]]) -> dict[str, float]:
    means = {name: mean_defined(values) for name, values in columns.items()}
    return {name: mean for name, mean in means.items() if mean is not None}
