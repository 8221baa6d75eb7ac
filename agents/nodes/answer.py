"""Answer: a cited answer from the ranked passages, streamed token by token.

With an LLM: the passages are numbered sources and the model writes sentences that each cite them as
[n]; on a retry it also reads the verify stage's feedback. Offline: an extractive answer that quotes
the sentences of the best passage closest to the question (by meaning and by shared words, each
sentence read with its document's title), each with its [n]. It quotes one passage by default:
without a model to read them, a second passage that scores nearly as well is as often a near miss as
the other half of the evidence.

Table rows and form lines are quoted like sentences, read after their column headers. When the quoted
passages hold rows, a question asking for a figure or a date prefers the units holding one it does not
name itself, a row sharing none of the question's words yields to a unit that shares some, and a question
about several documents ("in each quarter", "both") quotes the best unit of each of the top documents.
Without rows the prose answer is as it was.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.errors import LLMOutputError
from agents.llm import ChatModel
from agents.nodes._asks import ASKS_DATE, AskedKind
from agents.nodes._drill import Drilled, best_unit
from agents.nodes._focus import Focus
from agents.nodes._relevance import Relevance, judge_relevance, reads_as_instruction
from agents.nodes._text import (
    evidence_units,
    format_source,
    headed_rows,
    key_terms,
    normalised,
    split_answer,
    term_share,
)
from agents.state import AgentState, AnswerSentence, Passage
from agents.steps import Step
from prompts import NO_ANSWER, render
from prompts.phrases import FIRST_ATTEMPT
from retrieval.index import SentenceVector
from retrieval.textutil import words

__all__ = ["NO_ANSWER", "answer_question", "format_sources"]

MEANING_WEIGHT = 0.7
MAX_PER_PASSAGE = 2
MIN_QUOTE_WORDS = 4
LONG_FRAGMENT_WORDS = 8
"""Words from which a unit without a sentence's end is quoted all the same: a heading is shorter, and a
PDF's table cells and form text lose their full stops ("... maintenance with same dose every 4 weeks")."""
NEAR_DUPLICATE = 0.92
# A quoted sentence must also score this share of the best one, so a strong match does not drag in filler.
RELATIVE_FLOOR = 0.9
# A multi-hop question names its bridge, whose passage the chain order puts right behind the first.
NAMED_IN_TOP = 2
# A question about several documents quotes one unit from each document among this many best passages.
MULTI_DOC_PASSAGES = 6
MULTI_DOC_LIMIT = 4
MULTI_DOC_FLOOR = 0.8
"""Share of the best document's score another document's best unit needs to be quoted too."""
# Units holding a figure win a figure question when the best of them scores this share of the best unit.
FIGURE_FLOOR = 0.8
ROW_MIN_SUPPORT = 0.2
"""Least similarity for a row naming a field the question asks for: the model reads a bare form line
("Date & Time: March 15, 2008, 14:30 EDT") as far from its question ("When did the accident happen?")."""
_CLOSERS = "\"'”’»)]"
_ASKS_FIGURE = re.compile(
    r"\b(?:how (?:many|much|far|long|old|tall|high|fast|heavy|large|big|deep)|when|"
    r"what (?:time|year|date|day|month)|total|amount|age|date|elevation|altitude|temperature|speed|"
    r"distance|weight|height|percentage|number of)\b",
    re.IGNORECASE,
)
_ASKS_EACH_DOCUMENT = re.compile(
    r"\b(?:both|respectively|(?:in|for) each|each (?:of|quarter|year|month|period|report|filing|document))\b",
    re.IGNORECASE,
)
_IMPLIED_FIELDS = (
    (re.compile(r"\bhow old\b", re.IGNORECASE), "age"),
    (re.compile(r"\bwhen\b", re.IGNORECASE), "date time"),
    (re.compile(r"\bwhat time\b", re.IGNORECASE), "date time"),
    (re.compile(r"\bhow (?:high|tall)\b", re.IGNORECASE), "elevation altitude height"),
    (re.compile(r"\bhow far\b", re.IGNORECASE), "distance"),
    (re.compile(r"\bhow (?:long|often)\b", re.IGNORECASE), "duration time"),
    (re.compile(r"\bhow (?:many|much)\b", re.IGNORECASE), "number total amount"),
)
"""The field names a form or table gives what a question asks for ("how old" is a row's "Age")."""
_DATE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b\d{1,2}:\d{2}\b|\b(?:1[6-9]|20)\d{2}\b",
    re.IGNORECASE,
)
_FIGURE = re.compile(r"\d+(?:[.,:/]\d+)*")
_PAGE_MARKER = re.compile(r"^\W*page\s+\d+(?:\s+of\s+\d+)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Candidate:
    """A passage sentence that could be quoted, with its source number and score."""

    number: int
    unit: SentenceVector
    score: float
    meaning: float
    alone: np.ndarray | None = None
    """The unit's vector read alone (see :func:`_readings`); None stands for the stored vector."""

    @property
    def vector(self) -> np.ndarray:
        """The unit's vector read alone: two neighbours pooled in one chunk read alike."""
        return self.unit.vector if self.alone is None else self.alone


def answer_question(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Write the answer with [n] citations to the ranked passages and stream it as it is written."""
    ctx = runtime.context
    ranked = state.get("ranked", [])
    question = state.get("standalone") or state["question"]
    attempt = state.get("attempts", 0) + 1
    writer = _writer_of(runtime)
    with record_step(Step.ANSWER, ctx, question=question, passages=len(ranked), attempt=attempt) as rec:
        if attempt > 1:
            writer({"type": "reset", "reason": "retrying with the verify stage's feedback"})
        text = _llm_answer(question, ranked, state.get("feedback", ""), ctx=ctx, writer=writer, rec=rec)
        if text is not None:
            sentences = split_answer(text)
        else:
            sentences = _extractive_answer(question, ranked, ctx=ctx, rec=rec)
            text = " ".join(s["text"] for s in sentences) or NO_ANSWER
            _emit_sentences([s["text"] for s in sentences] or [text], writer)
        insufficient = normalised(text).startswith(normalised(NO_ANSWER))
        if insufficient:
            text, sentences = NO_ANSWER, []
        rec.outputs.update(insufficient=insufficient, sentences=len(sentences))
    return {
        "answer_text": text,
        "sentences": sentences,
        "insufficient": insufficient,
        "attempts": attempt,
        "trace": [rec.entry],
    }


def format_sources(
    passages: list[Passage], rows: Mapping[str, Sequence[SentenceVector]] | None = None
) -> str:
    """The passages as the numbered sources of the answer prompt, best first; ``rows`` (by chunk id, see
    :func:`headed_rows`) are read after their headers."""
    return "\n\n".join(format_source(number, p, rows) for number, p in enumerate(passages, start=1))


def _writer_of(runtime: Runtime[RunContext]) -> StreamWriter:
    """The run's custom-stream writer; a bare runtime (a node called outside a graph) gets a no-op."""
    return getattr(runtime, "stream_writer", None) or (lambda _chunk: None)


def _llm_answer(
    question: str,
    ranked: list[Passage],
    feedback: str,
    *,
    ctx: RunContext,
    writer: StreamWriter,
    rec: StepRecorder,
) -> str | None:
    """The model's streamed answer, or None (the trace says why) when there is no model or it failed."""
    rec.outputs["mode"] = "extractive"
    if ctx.llm is None or not ranked:
        return None
    messages = render(
        "answer",
        question=question,
        sources=format_sources(ranked, headed_rows(ranked, ctx.index)),
        feedback=feedback or FIRST_ATTEMPT,
    )
    text = ask_model(
        ctx,
        rec,
        lambda model: _stream(model, messages, max_tokens=ctx.settings.answer.max_tokens, writer=writer),
        stage=Step.ANSWER,
        what="answer generation",
        fallback="quoted the passages instead",
    )
    if text is None:
        writer({"type": "reset", "reason": "the model failed; the answer quotes the passages instead"})
        return None
    rec.outputs["mode"] = "llm"
    return text.strip()


def _stream(
    model: ChatModel, messages: list[dict[str, str]], *, max_tokens: int, writer: StreamWriter
) -> str:
    """The model's answer, each piece written to the stream as it comes; an empty reply is a failure."""
    pieces: list[str] = []
    for piece in model.stream(messages, stage=Step.ANSWER, max_tokens=max_tokens):
        pieces.append(piece)
        writer({"type": "token", "text": piece})
    text = "".join(pieces)
    if not text.strip():
        raise LLMOutputError("answer: the reply was empty", stage=Step.ANSWER, raw_text=text, attempts=1)
    return text


def _extractive_answer(
    question: str, ranked: list[Passage], *, ctx: RunContext, rec: StepRecorder
) -> list[AnswerSentence]:
    """The passage sentences closest to the question, each quoted exactly and followed by its [n]."""
    config = ctx.settings.answer
    numbered = list(enumerate(ranked, start=1))
    quoted, found = _quoted_passages(question, numbered, ctx)
    focus = found.focus if found is not None else None
    candidates = _candidates(question, quoted, ctx=ctx, focus=focus)
    each_document = _ASKS_EACH_DOCUMENT.search(question) is not None
    if each_document or _has_rows(candidates):
        wider_passages = _row_passages(numbered, config.quote_passages, each_document)
        wider = _candidates(question, wider_passages, ctx=ctx, focus=None if each_document else focus)
        each_document = each_document and _has_rows(wider)
        candidates = wider if _has_rows(wider) else candidates
    floor = config.min_support
    if _has_rows(candidates):
        candidates = _preferred(question, candidates)
        floor = min(floor, ROW_MIN_SUPPORT)
    if each_document:
        chosen = _one_per_document(candidates, floor=floor)
    else:
        chosen = _pick(candidates, limit=config.max_sentences, floor=floor)
        if found is not None:
            chosen = _with_drilled(chosen, candidates, found.unit.sentence_id, limit=config.max_sentences)
    rec.outputs["quoted"] = [
        {"number": c.number, "sentence_id": c.unit.sentence_id, "score": round(c.score, 4)} for c in chosen
    ]
    rec.outputs["best_score"] = round(max((c.score for c in candidates), default=0.0), 4)
    if chosen:
        relevance = _relevance_of(question, chosen, ranked)
        rec.outputs["relevance"] = relevance.as_dict()
        if ctx.settings.answer.decline and not relevance.answers:
            rec.outputs["declined"] = relevance.why_not
            return []
    return [
        AnswerSentence(text=f"{c.unit.reading} [{c.number}]", citations=[c.number], verdict=None, support=0.0)
        for c in chosen
    ]


def _quoted_passages(
    question: str, numbered: list[tuple[int, Passage]], ctx: RunContext
) -> tuple[list[tuple[int, Passage]], Drilled | None]:
    """The passages the answer quotes from: the best ``quote_passages``, and the one holding the best
    document's best unit (see :mod:`agents.nodes._drill`), with that unit and the question's focus."""
    quoted = numbered[: ctx.settings.answer.quote_passages]
    if not numbered or not ctx.settings.rerank.drill_down:
        return quoted, None
    found = best_unit(question, numbered[0][1]["doc_id"], ctx)
    if found is None:
        return quoted, None
    holding = [(n, p) for n, p in numbered if p["chunk_id"] == found.chunk.chunk_id and (n, p) not in quoted]
    return quoted + holding, found


def _with_drilled(
    chosen: list[_Candidate], candidates: list[_Candidate], drilled_id: str, *, limit: int
) -> list[_Candidate]:
    """``chosen`` holding the drilled unit too, in place of the weakest pick when full, if that unit is a
    candidate at all: the drill-down searched the whole document for what is asked, the candidates'
    scores only the passages at hand, and each finds answers the other misses."""
    drilled = next((c for c in candidates if c.unit.sentence_id == drilled_id), None)
    if drilled is None or any(c.unit.sentence_id == drilled_id for c in chosen):
        return chosen
    kept = sorted(chosen, key=lambda c: -c.score)[: max(0, limit - 1)]
    return sorted([*kept, drilled], key=lambda c: (c.number, c.unit.start))


def _row_passages(
    numbered: list[tuple[int, Passage]], quote_passages: int, each_document: bool
) -> list[tuple[int, Passage]]:
    """The passages an answer from rows reads: the best few for a question about several documents, else
    the quoted passages and every other ranked passage of their documents, since a form's fields spread
    over its pages while the question's names sit on its first."""
    if each_document:
        return numbered[: max(quote_passages, MULTI_DOC_PASSAGES)]
    docs = {passage["doc_id"] for _, passage in numbered[:quote_passages]}
    return [(number, passage) for number, passage in numbered if passage["doc_id"] in docs]


def _candidates(
    question: str, quoted: list[tuple[int, Passage]], *, ctx: RunContext, focus: Focus | None = None
) -> list[_Candidate]:
    """Each quotable sentence or row of the ``quoted`` passages (with their source numbers) at least
    ``min_support`` similar to the question, scored with shared words. A unit is read both as it stands and
    headed by its document's title, whichever is closer, so "It weighs 760 kilograms" counts as being about
    the Rosetta Stone. With a ``focus`` (see :mod:`agents.nodes._focus`) units are read against it and
    its terms, and still against the whole question, since reading against the focus alone lost
    answers whose sentence repeats a name ("Tesla moved to New York in 1884")."""
    units = evidence_units([passage for _, passage in quoted], ctx.index)
    sentences = [
        (number, passage, unit)
        for number, passage in quoted
        for unit in units.get(passage["chunk_id"], [])
        if _quotable(unit)
    ]
    if not sentences:
        return []
    asked_vector = ctx.embed_query(question)
    vector = ctx.embed_query(focus.text) if focus is not None else asked_vector
    alone, titled = _readings([(passage, unit) for _, passage, unit in sentences], ctx)
    asked = focus.terms if focus is not None else key_terms(question)
    fields = _asked_fields(question)
    held = [key_terms(f"{passage['title']} {unit.reading}") & asked for _, passage, unit in sentences]
    weight = _rarity(asked, held)
    total = sum(weight.values()) or 1.0
    candidates = []
    for (number, _, unit), own, under_title, terms in zip(sentences, alone, titled, held, strict=True):
        meaning = max(
            float(np.dot(own, vector)),
            float(np.dot(own, asked_vector)),
            float(np.dot(under_title, asked_vector)),
        )
        names_field = (
            unit.role == "row" and meaning >= ROW_MIN_SUPPORT and term_share(fields, unit.reading) > 0
        )
        if meaning < ctx.settings.answer.min_support and not names_field:
            continue
        shared = sum(weight[t] for t in terms) / total
        candidates.append(
            _Candidate(
                number=number,
                unit=unit,
                score=MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * shared,
                meaning=meaning,
                alone=own,
            )
        )
    return candidates


def _rarity(asked: set[str], held: list[set[str]]) -> dict[str, float]:
    """Each question term's weight among the candidate units: the fewer hold it, the more it counts. Terms
    that name the document (its subject, its aircraft, its title) stand in many of its units and pick none
    of them out; the term for what is asked ("airframe", "platform") stands in the one that answers."""
    count = len(held)
    return {t: math.log(1 + count / (1 + sum(t in terms for terms in held))) for t in asked}


def _readings(
    sentences: list[tuple[Passage, SentenceVector]], ctx: RunContext
) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's vector read alone, and read under its document's title ("title: sentence"). Alone is
    the stored vector, unless that was pooled in its chunk's context (late sentence vectors, see
    :attr:`RunContext.pooled_sentence_vectors`), which scores a sentence by its neighbours: then the
    sentence is embedded alone now, and the answer weighs the same readings in either mode."""
    titled = ctx.embed([f"{passage['title']}: {unit.reading}" for passage, unit in sentences])
    if ctx.pooled_sentence_vectors:
        return ctx.embed([unit.reading for _, unit in sentences]), titled
    return np.stack([unit.vector for _, unit in sentences]), titled


def _relevance_of(question: str, chosen: list[_Candidate], ranked: list[Passage]) -> Relevance:
    """How well the quoted sentences, read with their documents' titles and sections, answer the question.
    The question's names may stand in any ranked passage of a quoted document (a report names its aircraft
    on page 1 and gives the asked field on page 2) or in the best two (a multi-hop question's bridge), or
    in a quoted document's file name, by which people call it ("the protocol NCT06156735")."""
    passages = [ranked[number - 1] for number in dict.fromkeys(c.number for c in chosen)]
    quoted_docs = {p["doc_id"] for p in passages}
    named_in = passages + [
        p
        for i, p in enumerate(ranked)
        if p not in passages and (i < NAMED_IN_TOP or p["doc_id"] in quoted_docs)
    ]
    if _has_rows(chosen):
        question = " ".join([question, *(field for asks, field in _IMPLIED_FIELDS if asks.search(question))])
    return judge_relevance(
        question,
        " ".join(c.unit.reading for c in chosen),
        context=" ".join(f"{p['title']} {p['section']}" for p in passages),
        meaning=max(c.meaning for c in chosen),
        passage=" ".join(f"{p['doc_id']} {p['title']} {p['text']}" for p in named_in),
        title=passages[0]["title"],
    )


def _quotable(unit: SentenceVector) -> bool:
    """A row with words besides a page number, or a full sentence, not a heading or a fragment: enough
    words, ending like a sentence, or many words."""
    stripped = unit.text.strip()
    if unit.role == "row":
        return (
            not reads_as_instruction(stripped)
            and _PAGE_MARKER.match(stripped) is None
            and any(word[0].isalpha() for word in words(stripped))
        )
    return (
        not stripped.startswith("#")
        and not reads_as_instruction(stripped)
        and (
            len(words(stripped)) >= LONG_FRAGMENT_WORDS
            or (
                stripped.rstrip(_CLOSERS).endswith((".", "!", "?"))
                and len(words(stripped)) >= MIN_QUOTE_WORDS
            )
        )
    )


def _has_rows(candidates: list[_Candidate]) -> bool:
    return any(c.unit.role == "row" for c in candidates)


def _preferred(question: str, candidates: list[_Candidate]) -> list[_Candidate]:
    """The candidates that answer the question's kind: rows that share none of its words give way to units
    that share some, and a question asking for a figure or a date keeps the units holding one it does not
    name itself, when the best of those is close to the best unit."""
    asked = _asked_fields(question)
    if any(term_share(asked, c.unit.reading) > 0 for c in candidates):
        candidates = [c for c in candidates if c.unit.role != "row" or term_share(asked, c.unit.reading) > 0]
    if not candidates or _ASKS_FIGURE.search(question) is None:
        return candidates
    kind = AskedKind.of(question, _DATE if ASKS_DATE.search(question) else _FIGURE)
    holding = [c for c in candidates if kind.held_by(c.unit.reading)]
    best = max(c.score for c in candidates)
    if holding and max(c.score for c in holding) >= FIGURE_FLOOR * best:
        return holding
    return candidates


def _asked_fields(question: str) -> set[str]:
    """The question's key terms and the field names a form gives what it asks for."""
    implied = " ".join(field for asks, field in _IMPLIED_FIELDS if asks.search(question))
    return key_terms(f"{question} {implied}")


def _one_per_document(candidates: list[_Candidate], *, floor: float) -> list[_Candidate]:
    """The best candidate of each document, for the best few documents, in passage order."""
    best: dict[str, _Candidate] = {}
    ordered = sorted(candidates, key=lambda c: -c.score)
    floor = max(floor, MULTI_DOC_FLOOR * ordered[0].score) if ordered else floor
    for candidate in ordered:
        if candidate.score >= floor:
            best.setdefault(candidate.unit.doc_id, candidate)
    chosen = list(best.values())[:MULTI_DOC_LIMIT]
    return sorted(chosen, key=lambda c: (c.number, c.unit.start))


def _pick(candidates: list[_Candidate], *, limit: int, floor: float) -> list[_Candidate]:
    """The best candidates above ``floor`` and near the top: few per passage, no repeats, in passage order."""
    chosen: list[_Candidate] = []
    per_passage: Counter[int] = Counter()
    ordered = sorted(candidates, key=lambda c: -c.score)
    floor = max(floor, RELATIVE_FLOOR * ordered[0].score) if ordered else floor
    for candidate in ordered:
        if candidate.score < floor or len(chosen) == limit:
            break
        if per_passage[candidate.number] >= MAX_PER_PASSAGE or any(
            _near_duplicate(candidate, c) for c in chosen
        ):
            continue
        chosen.append(candidate)
        per_passage[candidate.number] += 1
    return sorted(chosen, key=lambda c: (c.number, c.unit.start))


def _near_duplicate(a: _Candidate, b: _Candidate) -> bool:
    same_place = a.unit.doc_id == b.unit.doc_id and a.unit.start == b.unit.start
    return same_place or float(np.dot(a.vector, b.vector)) >= NEAR_DUPLICATE


def _emit_sentences(sentences: list[str], writer: StreamWriter) -> None:
    """Stream an answer written all at once, one sentence per token event."""
    for i, sentence in enumerate(sentences):
        writer({"type": "token", "text": sentence if i == 0 else f" {sentence}"})
