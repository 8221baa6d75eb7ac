"""Text helpers shared by answer and verify: citation markers, answer sentences, evidence sentences and
rows, numbered sources."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from agents.state import AnswerSentence, Passage
from retrieval.chunking import split_sentences
from retrieval.hits import SentenceVector, hit_from_passage
from retrieval.index import Index
from retrieval.lexical import stemmer
from retrieval.textutil import content_words

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_MARKER_RUN = re.compile(r"(?P<space>[ \t]*)(?P<markers>(?:\[\d+(?:\s*,\s*\d+)*\])+)")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_TRAILING = " \t\n.!?;:,\"'”’)"


def citation_numbers(text: str) -> list[int]:
    """The source numbers cited in ``text``, first appearance first, without repeats."""
    found = (int(n) for m in CITATION.finditer(text) for n in m.group(1).split(","))
    return list(dict.fromkeys(found))


def valid_numbers(numbers: Sequence[int], count: int) -> list[int]:
    """The numbers of a model's reply that name one of ``count`` listed items (1-based), without repeats."""
    return [n for n in dict.fromkeys(numbers) if 1 <= n <= count]


def strip_citations(text: str) -> str:
    """``text`` without its [n] markers."""
    return _MARKER_RUN.sub("", text).strip()


def drop_citations(text: str, *, keep: Callable[[int], bool]) -> str:
    """``text`` with every cited number that ``keep`` rejects removed, and emptied markers deleted."""

    def rewrite_marker(numbers: str) -> str:
        cited = [int(n) for n in numbers.split(",")]
        kept = [n for n in cited if keep(n)]
        if kept == cited:
            return f"[{numbers}]"
        return f"[{', '.join(map(str, kept))}]" if kept else ""

    def rewrite_run(run: re.Match[str]) -> str:
        markers = "".join(rewrite_marker(m.group(1)) for m in CITATION.finditer(run.group("markers")))
        return f"{run.group('space')}{markers}" if markers else ""

    return _MARKER_RUN.sub(rewrite_run, text).strip()


def split_answer(text: str) -> list[AnswerSentence]:
    """An answer's sentences with their cited numbers; markers after a full stop stay with that sentence."""
    pieces: list[str] = []
    for start, end in split_sentences(text):
        piece = text[start:end]
        leading = _LEADING_CITATIONS.match(piece)
        if leading and pieces:
            pieces[-1] = f"{pieces[-1]} {leading.group().strip()}"
            piece = piece[leading.end() :].strip()
        if piece:
            pieces.append(piece)
    return [AnswerSentence(text=p, citations=citation_numbers(p), verdict=None, support=0.0) for p in pieces]


def format_source(
    number: int, passage: Passage, rows: Mapping[str, Sequence[SentenceVector]] | None = None
) -> str:
    """One passage as a numbered source for a prompt: ``[n] (title, p. X)`` then its text, where each of
    its ``rows`` (by chunk id, from :func:`headed_rows`) reads after its headers ("Total net sales | …")."""
    where = passage["title"] or passage["doc_id"]
    if passage["page"] is not None:
        where = f"{where}, p. {passage['page']}"
    return f"[{number}] ({where})\n{_rows_with_headers(passage, (rows or {}).get(passage['chunk_id'], ()))}"


def _rows_with_headers(passage: Passage, units: Sequence[SentenceVector]) -> str:
    text, offset = passage["text"], passage["start"]
    for unit in sorted((u for u in units if u.headers), key=lambda u: -u.start):
        start, end = unit.start - offset, unit.end - offset
        if 0 <= start <= end <= len(text) and text[start:end] == unit.text:
            text = f"{text[:start]}{unit.reading}{text[end:]}"
    return text


def headed_rows(passages: Sequence[Passage], index: Index) -> dict[str, list[SentenceVector]]:
    """The rows with headers inside each passage, by chunk id, for :func:`format_source`."""
    if not passages:
        return {}
    units = index.sentences_of([hit_from_passage(p) for p in {p["chunk_id"]: p for p in passages}.values()])
    return {chunk_id: [u for u in found if u.headers] for chunk_id, found in units.items()}


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case, spacing and outer punctuation."""
    wanted = normalised(phrase)
    return bool(wanted) and re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", normalised(text)) is not None


def normalised(text: str) -> str:
    """Lower-case text with runs of white space made single and outer punctuation removed."""
    return " ".join(text.lower().split()).strip(_TRAILING)


def key_terms(text: str) -> set[str]:
    """The stems of the content words of ``text``, so 'deciphered' meets 'decipherment'."""
    return set(stemmer().stemWords(content_words(text)))


def term_share(terms: set[str], text: str) -> float:
    """The share of ``terms`` (from :func:`key_terms`) found in ``text``; 0 when ``terms`` is empty."""
    if not terms:
        return 0.0
    return len(terms & key_terms(text)) / len(terms)


def evidence_units(passages: Sequence[Passage], index: Index) -> dict[str, list[SentenceVector]]:
    """The embedded sentences of each passage by chunk id; a passage without stored sentences is one unit."""
    unique = list({p["chunk_id"]: p for p in passages}.values())
    if not unique:
        return {}
    units = index.sentences_of([hit_from_passage(p) for p in unique])
    bare = [p for p in unique if not units.get(p["chunk_id"])]
    if bare:
        vectors = index.embedder.embed_documents([p["text"] for p in bare])
        for passage, vector in zip(bare, vectors, strict=True):
            units[passage["chunk_id"]] = [_whole_passage(passage, vector)]
    return units


def _whole_passage(passage: Passage, vector: np.ndarray) -> SentenceVector:
    return SentenceVector(
        sentence_id=passage["chunk_id"],
        doc_id=passage["doc_id"],
        text=passage["text"],
        start=passage["start"],
        end=passage["end"],
        vector=vector,
    )
