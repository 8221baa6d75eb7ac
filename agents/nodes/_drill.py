"""Drill down: the best document's best unit, searched among all of that document's units.

A question names its document ("the December 8, 2007 accident of Piper N5921D") and asks for one thing in
it ("the airframe total time"). Ranking whole passages rewards the passage that repeats the names (a report's
first page) over the one that holds the answer (a form line on page 2). Inside one document the names are
everywhere and pick nothing out, so a BM25 over that document's own sentences and rows, whose term weights
come from that document alone, scores what is asked; fused with dense similarity by the corpus's signal
weights, its best unit brings its passage up: before the first, unless the first holds one of the best few.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.context import RunContext
from agents.nodes._asks import asked_kind
from agents.nodes._focus import Focus, focus_in
from agents.nodes._readings import alone_first
from agents.state import Passage
from retrieval.fusion import ranked, rrf
from retrieval.hits import ChunkHit, SentenceVector, passage_from_hit
from retrieval.lexical import LexicalIndex

CLOSE_UNITS = 3
"""A first passage holding one of the document's best few units keeps its place; one that holds none was
ranked for the words naming the document, and the best unit's passage goes before it."""
ASKED_KIND_BONUS = 1.05
"""Factor on the fused score of a unit holding the kind of thing asked (a figure, a date; see
:mod:`agents.nodes._asks`): it passes the one or two units just above it. Measured on the answer's
document, the best unit held the answer for 19 of 47 nih-protocols questions instead of 14, 28 of 47
ntsb-reports instead of 26, 37 of 200 hotpotqa-500 instead of 35, and 156 of 200 xquad-en instead of 157."""


@dataclass(frozen=True)
class Drilled:
    """A document's unit closest to what the question asks, the first chunk holding it, and that focus."""

    unit: SentenceVector
    chunk: ChunkHit
    focus: Focus
    ranking: list[SentenceVector]
    """All the document's units, best first."""

    def rank_within(self, passage: Passage) -> int:
        """The place in :attr:`ranking` of the best unit ``passage`` holds (past the end when none)."""
        return next(
            (
                i
                for i, unit in enumerate(self.ranking)
                if passage["start"] <= unit.start and unit.end <= passage["end"]
            ),
            len(self.ranking),
        )


def drilled(question: str, order: list[Passage], ctx: RunContext) -> list[Passage]:
    """``order`` with the passage holding the first document's best unit moved (or added) up: first when
    the first passage holds none of the document's few best units, else second."""
    if not order:
        return order
    first = order[0]
    found = best_unit(question, first["doc_id"], ctx)
    if found is None or found.chunk.chunk_id == first["chunk_id"]:
        return order
    best = found.chunk
    present = next((p for p in order if p["chunk_id"] == best.chunk_id), None)
    moved = present if present is not None else passage_from_hit(best, first["score"])
    rest = [p for p in order if p["chunk_id"] != best.chunk_id]
    if found.rank_within(first) >= CLOSE_UNITS:
        return [moved, *rest]
    return [first, moved, *rest[1:]]


def best_unit(question: str, doc_id: str, ctx: RunContext) -> Drilled | None:
    """The document's unit closest to the question's focus by in-document BM25 and meaning, and the first
    chunk holding it; None for a document of fewer than two units. Searched once per question."""
    return ctx.once(("drill", question, doc_id), lambda: _search(question, doc_id, ctx))


def _search(question: str, doc_id: str, ctx: RunContext) -> Drilled | None:
    index = ctx.index
    chunks = index.chunks_of(doc_id)
    held = index.sentences_of(chunks)
    holder: dict[str, ChunkHit] = {}
    units: dict[str, SentenceVector] = {}
    for chunk in chunks:
        for unit in held.get(chunk.chunk_id, []):
            holder.setdefault(unit.sentence_id, chunk)
            units.setdefault(unit.sentence_id, unit)
    if len(units) < 2:
        return None
    ids = list(units)
    in_order = sorted(units.values(), key=lambda unit: unit.start)
    focus = focus_in(question, in_order, title=chunks[0].title, share=index.document_share)
    lexical = LexicalIndex.build(ids, ids, [units[i].reading for i in ids]).scores(focus.text)
    vector = ctx.embed_query(focus.text)
    by_terms = {i: float(score) for i, score in zip(ids, lexical, strict=True)}
    by_meaning = dict(zip(ids, alone_first([units[i] for i in ids], list(lexical), vector, ctx), strict=True))
    signal = ctx.signal_weights()
    fused = rrf([ranked(by_terms), ranked(by_meaning)], weights=[signal.bm25, signal.dense])
    kind = asked_kind(question)
    if kind is not None:
        fused = {
            i: score * (ASKED_KIND_BONUS if kind.held_by(units[i].reading) else 1.0)
            for i, score in fused.items()
        }
    ranking = [units[i] for i in ranked(fused)]
    return Drilled(unit=ranking[0], chunk=holder[ranking[0].sentence_id], focus=focus, ranking=ranking)
