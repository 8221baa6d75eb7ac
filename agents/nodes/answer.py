"""Answer: a cited answer from the ranked passages, streamed token by token.

With an LLM: the passages are numbered sources and the model writes sentences that each cite them as
[n]; on a retry it also reads the verify stage's feedback. Offline: an extractive answer that quotes
the sentences of the best passage closest to the question (by meaning and by shared words, each
sentence read with its document's title), each with its [n]. It quotes one passage by default:
without a model to read them, a second passage that scores nearly as well is as often a near miss as
the other half of the evidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.errors import LLMOutputError
from agents.llm import ChatModel
from agents.nodes._relevance import Relevance, judge_relevance, reads_as_instruction
from agents.nodes._text import evidence_units, format_source, key_terms, normalised, split_answer, term_share
from agents.state import AgentState, AnswerSentence, Passage
from agents.steps import Step
from prompts import NO_ANSWER, render
from prompts.phrases import FIRST_ATTEMPT
from retrieval.embeddings import SpanEmbedder
from retrieval.index import SentenceVector
from retrieval.textutil import words

__all__ = ["NO_ANSWER", "answer_question", "format_sources"]

MEANING_WEIGHT = 0.7
MAX_PER_PASSAGE = 2
MIN_QUOTE_WORDS = 4
NEAR_DUPLICATE = 0.92
# A quoted sentence must also score this share of the best one, so a strong match does not drag in filler.
RELATIVE_FLOOR = 0.9
# A multi-hop question names its bridge, whose passage the chain order puts right behind the first.
NAMED_IN_TOP = 2
_CLOSERS = "\"'”’»)]"


@dataclass(frozen=True)
class _Candidate:
    """A passage sentence that could be quoted, with its source number and score."""

    number: int
    unit: SentenceVector
    score: float
    meaning: float


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


def format_sources(passages: list[Passage]) -> str:
    """The passages as the numbered sources of the answer prompt, best first."""
    return "\n\n".join(format_source(number, p) for number, p in enumerate(passages, start=1))


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
        "answer", question=question, sources=format_sources(ranked), feedback=feedback or FIRST_ATTEMPT
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
    candidates = _candidates(question, ranked, ctx=ctx)
    chosen = _pick(candidates, limit=config.max_sentences, floor=config.min_support)
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
        AnswerSentence(text=f"{c.unit.text} [{c.number}]", citations=[c.number], verdict=None, support=0.0)
        for c in chosen
    ]


def _candidates(question: str, ranked: list[Passage], *, ctx: RunContext) -> list[_Candidate]:
    """Each quotable sentence of the quoted passages at least ``min_support`` similar to the question,
    scored with shared words. A sentence is read both as it stands and headed by its document's title,
    whichever is closer, so "It weighs 760 kilograms" counts as being about the Rosetta Stone."""
    quoted = ranked[: ctx.settings.answer.quote_passages]
    units = evidence_units(quoted, ctx.index)
    sentences = [
        (number, passage, unit)
        for number, passage in enumerate(quoted, start=1)
        for unit in units.get(passage["chunk_id"], [])
        if _quotable(unit.text)
    ]
    if not sentences:
        return []
    vector = ctx.embed_query(question)
    in_context = _titled_vectors([(passage, unit) for _, passage, unit in sentences], ctx)
    asked = key_terms(question)
    candidates = []
    for (number, passage, unit), contextual in zip(sentences, in_context, strict=True):
        meaning = max(float(np.dot(unit.vector, vector)), float(np.dot(contextual, vector)))
        if meaning < ctx.settings.answer.min_support:
            continue
        shared = term_share(asked, f"{passage['title']} {unit.text}")
        candidates.append(
            _Candidate(
                number=number,
                unit=unit,
                score=MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * shared,
                meaning=meaning,
            )
        )
    return candidates


def _titled_vectors(sentences: list[tuple[Passage, SentenceVector]], ctx: RunContext) -> np.ndarray:
    """Each sentence read under its document's title. A late sentence vector (``index.sentence_vectors``)
    was pooled from its chunk's pass, whose text opens with the title, so it is that reading already and
    is reused; other sentences are embedded again as "title: sentence"."""
    index = ctx.settings.index
    late = index.embed_sentences and index.sentence_vectors == "late"
    if late and isinstance(ctx.index.embedder, SpanEmbedder):
        return np.stack([unit.vector for _, unit in sentences])
    return ctx.embed([f"{passage['title']}: {unit.text}" for passage, unit in sentences])


def _relevance_of(question: str, chosen: list[_Candidate], ranked: list[Passage]) -> Relevance:
    """How well the quoted sentences, read with their documents' titles and sections, answer the question."""
    passages = [ranked[number - 1] for number in dict.fromkeys(c.number for c in chosen)]
    named_in = passages + [p for p in ranked[:NAMED_IN_TOP] if p not in passages]
    return judge_relevance(
        question,
        " ".join(c.unit.text for c in chosen),
        context=" ".join(f"{p['title']} {p['section']}" for p in passages),
        meaning=max(c.meaning for c in chosen),
        passage=" ".join(f"{p['title']} {p['text']}" for p in named_in),
        title=passages[0]["title"],
    )


def _quotable(text: str) -> bool:
    """A full sentence, not a heading or a fragment: enough words, ending like a sentence."""
    stripped = text.strip()
    return (
        not stripped.startswith("#")
        and not reads_as_instruction(stripped)
        and stripped.rstrip(_CLOSERS).endswith((".", "!", "?"))
        and len(words(stripped)) >= MIN_QUOTE_WORDS
    )


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
            _near_duplicate(candidate.unit, c.unit) for c in chosen
        ):
            continue
        chosen.append(candidate)
        per_passage[candidate.number] += 1
    return sorted(chosen, key=lambda c: (c.number, c.unit.start))


def _near_duplicate(a: SentenceVector, b: SentenceVector) -> bool:
    same_place = a.doc_id == b.doc_id and a.start == b.start
    return same_place or float(np.dot(a.vector, b.vector)) >= NEAR_DUPLICATE


def _emit_sentences(sentences: list[str], writer: StreamWriter) -> None:
    """Stream an answer written all at once, one sentence per token event."""
    for i, sentence in enumerate(sentences):
        writer({"type": "token", "text": sentence if i == 0 else f" {sentence}"})
