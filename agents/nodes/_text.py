"""Text helpers shared by answer and verify: citation markers, answer sentences, evidence sentences."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from agents.state import AnswerSentence, Passage
from retrieval.chunking import split_sentences
from retrieval.index import ChunkHit, Index, SentenceVector
from retrieval.textutil import content_words

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_SPACE_BEFORE_MARK = re.compile(r"[ \t]+(?=[.,;:!?]|$)", re.MULTILINE)
_DOUBLE_SPACE = re.compile(r"(?<=\S)[ \t]{2,}")
_TRAILING = " \t\n.!?;:,\"'”’)"


def citation_numbers(text: str) -> list[int]:
    """The source numbers cited in ``text``, first appearance first, without repeats."""
    found = (int(n) for m in CITATION.finditer(text) for n in m.group(1).split(","))
    return list(dict.fromkeys(found))


def strip_citations(text: str) -> str:
    """``text`` without its [n] markers."""
    return _tidy(CITATION.sub("", text))


def drop_citations(text: str, *, keep: Callable[[int], bool]) -> str:
    """``text`` with every cited number that ``keep`` rejects removed, and emptied markers deleted."""

    def rewrite(match: re.Match[str]) -> str:
        numbers = [n for n in (int(x) for x in match.group(1).split(",")) if keep(n)]
        return f"[{', '.join(map(str, numbers))}]" if numbers else ""

    return _tidy(CITATION.sub(rewrite, text))


def _tidy(text: str) -> str:
    return _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_MARK.sub("", text)).strip()


def split_answer(text: str) -> list[AnswerSentence]:
    """An answer's sentences, each with its cited numbers; markers after a full stop stay with that sentence."""
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


def normalised(text: str) -> str:
    """Lower-case text with runs of white space made single and outer punctuation removed."""
    return " ".join(text.lower().split()).strip(_TRAILING)


def word_share(words: set[str], text: str) -> float:
    """The share of ``words`` that occur among the content words of ``text`` (0 when ``words`` is empty)."""
    if not words:
        return 0.0
    return len(words & set(content_words(text))) / len(words)


def evidence_units(passages: Sequence[Passage], index: Index) -> dict[str, list[SentenceVector]]:
    """The embedded sentences of each passage by chunk id; a passage without stored sentences is one unit."""
    unique = list({p["chunk_id"]: p for p in passages}.values())
    if not unique:
        return {}
    units = index.sentences_of([_as_hit(p) for p in unique])
    bare = [p for p in unique if not units.get(p["chunk_id"])]
    if bare:
        vectors = index.embedder.embed_documents([p["text"] for p in bare])
        for passage, vector in zip(bare, vectors, strict=True):
            units[passage["chunk_id"]] = [_whole_passage(passage, vector)]
    return units


def _as_hit(passage: Passage) -> ChunkHit:
    return ChunkHit(
        chunk_id=passage["chunk_id"],
        doc_id=passage["doc_id"],
        title=passage["title"],
        text=passage["text"],
        start=passage["start"],
        end=passage["end"],
        section=passage["section"],
        page=passage["page"],
        ordinal=0,
        score=passage["score"],
    )


def _whole_passage(passage: Passage, vector: np.ndarray) -> SentenceVector:
    return SentenceVector(
        sentence_id=passage["chunk_id"],
        doc_id=passage["doc_id"],
        text=passage["text"],
        start=passage["start"],
        end=passage["end"],
        vector=vector,
    )
