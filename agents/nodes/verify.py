"""Verify: every citation checked against the passage it names; an unsupported answer goes back once.

A citation must name a ranked passage that was retrieved; any other is removed and reported. Each
remaining citation gets a support score, half the best cosine between the sentence and one of the
passage's sentences and half the share of the sentence's content words found in that sentence, and
that best sentence is the quote, with its exact offsets in the document. With an LLM, one batched
entailment call refines the verdicts; the trace keeps both opinions.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from langgraph.runtime import Runtime

from agents.context import RunContext, StepRecorder, ask_model, record_step
from agents.llm import ReplyBudget
from agents.nodes._readings import similarities
from agents.nodes._relevance import Relevance, judge_relevance
from agents.nodes._text import (
    contains_phrase,
    drop_citations,
    evidence_units,
    format_source,
    headed_rows,
    key_terms,
    strip_citations,
    term_share,
)
from agents.settings import VerifyConfig
from agents.state import AgentState, AnswerSentence, Citation, Passage, Verdict
from agents.steps import Step
from prompts import render
from prompts.phrases import (
    FEEDBACK_INTRO,
    FEEDBACK_NO_VALID_SOURCE,
    FEEDBACK_NOT_STATED_BY_ONE,
    FEEDBACK_NOT_STATED_BY_SEVERAL,
    FEEDBACK_REMOVED,
    FEEDBACK_REWRITE,
    FEEDBACK_SENTENCE,
    NO_ANSWER,
)
from prompts.schemas import Judgements
from retrieval.index import SentenceVector

__all__ = ["combine_verdicts", "route_after_verify", "verify_answer"]

LEVEL: dict[Verdict, int] = {"unsupported": 0, "partial": 1, "supported": 2}
MEANING_WEIGHT = 0.5
JUDGEMENTS_REPLY = ReplyBudget(fixed=60, per_item=80)
"""Each judgement carries a verdict and a one-sentence reason."""


def verify_answer(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Check every cited sentence, attach quotes and verdicts, and ask for a retry when one is unsupported."""
    ctx = runtime.context
    config = ctx.settings.verify
    ranked = state.get("ranked", [])
    given = state.get("sentences", [])
    with record_step(Step.VERIFY, ctx, sentences=len(given), passages=len(ranked)) as rec:
        rec.skipped = not config.enabled
        invalid = _invalid_numbers(given, ranked, state.get("retrieved", []))
        removed = [
            {"sentence": i, "number": n, "why": invalid[n]}
            for i, s in enumerate(given)
            for n in s["citations"]
            if n in invalid
        ]
        sentences = [_without(s, invalid) for s in given]
        checked = _check_citations(sentences, ranked, ctx=ctx)
        verdicts = [_best_verdict(c) for c in checked]
        if config.enabled and config.llm_judge and ctx.llm is not None:
            verdicts = _judge(sentences, checked, verdicts, ranked, ctx=ctx, rec=rec)
        checked = [_with_verdict(c, v) for c, v in zip(checked, verdicts, strict=True)]
        question = state.get("standalone") or state.get("question", "")
        checked = _with_relevance(question, checked, ranked, ctx=ctx)
        sentences = [_judged(s, c, v) for s, c, v in zip(sentences, checked, verdicts, strict=True)]
        feedback = _feedback(sentences, checked, removed) if _should_retry(state, sentences, ctx) else ""
        answer_text = state.get("answer_text", "") or " ".join(s["text"] for s in given)
        rec.outputs.update(
            removed=removed,
            sentences=[
                {
                    "index": i,
                    "verdict": s["verdict"],
                    "support": s["support"],
                    "grounded": s.get("grounded", False),
                    "answers_question": s.get("answers_question", False),
                    "citations": s["citations"],
                }
                for i, s in enumerate(sentences)
            ],
            retry=bool(feedback),
        )
    return {
        "sentences": sentences,
        "citations": _by_number(checked),
        "answer_text": drop_citations(answer_text, keep=lambda n: n not in invalid),
        "feedback": feedback,
        "trace": [rec.entry],
    }


def route_after_verify(state: AgentState) -> Literal["answer", "end"]:
    """Back to the answer stage when verify left feedback, else on to the end."""
    return "answer" if state.get("feedback") else "end"


def combine_verdicts(score: Verdict, llm: Verdict) -> Verdict:
    """The LLM's verdict if decisive (not 'partial') and within one level of the score's; else the score's."""
    if llm != "partial" and abs(LEVEL[llm] - LEVEL[score]) <= 1:
        return llm
    return score


def grade(support: float, config: VerifyConfig) -> Verdict:
    """The verdict a support score earns under the configured thresholds."""
    if support >= config.supported:
        return "supported"
    if support >= config.partial:
        return "partial"
    return "unsupported"


def _invalid_numbers(
    sentences: list[AnswerSentence], ranked: list[Passage], retrieved: list[Passage]
) -> dict[int, str]:
    """Each cited number that names no usable passage, with the reason."""
    retrieved_ids = {p["chunk_id"] for p in retrieved}
    invalid: dict[int, str] = {}
    for number in sorted({n for s in sentences for n in s["citations"]}):
        if not 1 <= number <= len(ranked):
            invalid[number] = f"out of range: the answer had sources 1 to {len(ranked)}"
        elif ranked[number - 1]["chunk_id"] not in retrieved_ids:
            invalid[number] = f"passage {ranked[number - 1]['chunk_id']} is not among the retrieved passages"
    return invalid


def _without(sentence: AnswerSentence, invalid: dict[int, str]) -> AnswerSentence:
    return AnswerSentence(
        text=drop_citations(sentence["text"], keep=lambda n: n not in invalid),
        citations=[n for n in sentence["citations"] if n not in invalid],
        verdict=None,
        support=0.0,
    )


def _check_citations(
    sentences: list[AnswerSentence], ranked: list[Passage], *, ctx: RunContext
) -> list[list[Citation]]:
    """For each sentence, one scored Citation per number it cites."""
    cited = {n: ranked[n - 1] for s in sentences for n in s["citations"]}
    units = evidence_units(list(cited.values()), ctx.index)
    todo = [i for i, s in enumerate(sentences) if s["citations"]]
    claims = {i: strip_citations(sentences[i]["text"]) for i in todo}
    vectors = ctx.embed([claims[i] for i in todo]) if todo else np.zeros((0, 0))
    checked: list[list[Citation]] = [[] for _ in sentences]
    for row, i in enumerate(todo):
        checked[i] = [
            _cite(
                claims[i],
                vectors[row],
                number=n,
                passage=cited[n],
                units=units[cited[n]["chunk_id"]],
                ctx=ctx,
            )
            for n in sentences[i]["citations"]
        ]
    return checked


def _cite(
    claim: str,
    vector: np.ndarray,
    *,
    number: int,
    passage: Passage,
    units: list[SentenceVector],
    ctx: RunContext,
) -> Citation:
    """The citation [number] of ``claim``: its best-supporting sentence of the passage and that support
    (each sentence read alone, see :mod:`agents.nodes._readings`)."""
    config = ctx.settings.verify
    asked = key_terms(claim)
    readings = [passage["text"], *(u.reading for u in units if u.headers)]
    verbatim = any(contains_phrase(text, claim) for text in readings)
    shares = [term_share(asked, unit.reading) for unit in units]
    closeness = similarities(units, shares, vector, ctx)
    best, support = units[0], float("-inf")
    for unit, share, close in zip(units, shares, closeness, strict=True):
        score = MEANING_WEIGHT * close + (1 - MEANING_WEIGHT) * (1.0 if verbatim else share)
        if score > support:
            best, support = unit, score
    support = round(min(max(support, 0.0), 1.0), 4)
    return Citation(
        number=number,
        chunk_id=passage["chunk_id"],
        doc_id=passage["doc_id"],
        title=passage["title"],
        page=passage["page"],
        section=passage["section"],
        start=best.start,
        end=best.end,
        quote=best.text,
        verdict=grade(support, config),
        support=support,
        grounded=verbatim,
    )


def _judged(sentence: AnswerSentence, citations: list[Citation], verdict: Verdict) -> AnswerSentence:
    best = max((c["support"] for c in citations), default=0.0)
    return AnswerSentence(
        text=sentence["text"],
        citations=sentence["citations"],
        verdict=verdict,
        support=best,
        grounded=any(c.get("grounded", False) for c in citations),
        answers_question=any(c.get("answers_question", False) for c in citations),
    )


def _best_verdict(citations: list[Citation]) -> Verdict:
    return max((c["verdict"] for c in citations), key=LEVEL.__getitem__, default="unsupported")


def _with_verdict(citations: list[Citation], verdict: Verdict) -> list[Citation]:
    """Citations of a sentence the LLM judged: none may claim more support than the sentence has.

    A citation is grounded when the sentence is copied from its passage or the passage states it."""
    judged = []
    for c in citations:
        final = min(c["verdict"], verdict, key=LEVEL.__getitem__)
        grounded = c.get("grounded", False) or final == "supported"
        judged.append(Citation(**{**c, "verdict": final, "grounded": grounded}))
    return judged


def _with_relevance(
    question: str, checked: list[list[Citation]], ranked: list[Passage], *, ctx: RunContext
) -> list[list[Citation]]:
    """Each citation with whether its quote, read with its title and section, answers the question."""
    quotes = list(dict.fromkeys((c["title"], c["section"], c["quote"]) for cs in checked for c in cs))
    if not quotes:
        return checked
    asked = ctx.embed_query(question)
    vectors = ctx.embed([q for _, _, q in quotes] + [f"{t}: {q}" for t, _, q in quotes])
    passage_text: dict[tuple[str, str, str], str] = {
        (c["title"], c["section"], c["quote"]): ranked[c["number"] - 1]["text"] for cs in checked for c in cs
    }
    judged: dict[tuple[str, str, str], Relevance] = {}
    for i, (title, section, quote) in enumerate(quotes):
        meaning = max(float(np.dot(vectors[i], asked)), float(np.dot(vectors[len(quotes) + i], asked)))
        judged[(title, section, quote)] = judge_relevance(
            question,
            quote,
            context=f"{title} {section}",
            meaning=meaning,
            passage=passage_text[(title, section, quote)],
            title=title,
        )
    return [[_relevant(c, judged[(c["title"], c["section"], c["quote"])]) for c in cs] for cs in checked]


def _relevant(citation: Citation, relevance: Relevance) -> Citation:
    return Citation(
        **{
            **citation,
            "answers_question": relevance.answers,
            "relevance": relevance.score,
            "relevance_note": relevance.why_not,
        }
    )


def _judge(
    sentences: list[AnswerSentence],
    checked: list[list[Citation]],
    scored: list[Verdict],
    ranked: list[Passage],
    *,
    ctx: RunContext,
    rec: StepRecorder,
) -> list[Verdict]:
    """Verdicts refined by one batched LLM entailment call; the scores' verdicts if it cannot be made."""
    todo = [i for i, c in enumerate(checked) if c]
    if not todo:
        return scored
    numbers = sorted({c["number"] for i in todo for c in checked[i]})
    claims = "\n".join(
        f"{i}. {strip_citations(sentences[i]['text'])} (cites {_markers(checked[i])})" for i in todo
    )
    rows = headed_rows([ranked[n - 1] for n in numbers], ctx.index)
    sources = "\n\n".join(format_source(n, ranked[n - 1], rows) for n in numbers)
    reply = ask_model(
        ctx,
        rec,
        lambda model: model.structured(
            render("verify", claims=claims, sources=sources),
            Judgements,
            stage=Step.VERIFY,
            max_tokens=JUDGEMENTS_REPLY.tokens(len(todo)),
        ),
        stage=Step.VERIFY,
        what="entailment check",
        fallback="verdicts come from support scores alone",
    )
    if reply is None:
        return scored
    by_index = {j.index: j for j in reply.judgements if j.index in todo}
    final = list(scored)
    opinions = []
    for i in todo:
        judgement = by_index.get(i)
        if judgement is not None:
            final[i] = combine_verdicts(scored[i], judgement.verdict)
        opinions.append(
            {
                "sentence": i,
                "score_verdict": scored[i],
                "llm_verdict": judgement.verdict if judgement else None,
                "reason": judgement.reason if judgement else "the model gave no verdict",
                "verdict": final[i],
            }
        )
    rec.outputs["judge"] = opinions
    return final


def _should_retry(state: AgentState, sentences: list[AnswerSentence], ctx: RunContext) -> bool:
    """Whether the answer goes back with feedback: only with an LLM, within the retries, for a real answer."""
    config = ctx.settings.verify
    return (
        config.enabled
        and ctx.llm is not None
        and not state.get("insufficient", False)
        and state.get("answer_text", "") != NO_ANSWER
        and state.get("attempts", 0) <= config.retries
        and any(s["verdict"] == "unsupported" for s in sentences)
    )


def _feedback(
    sentences: list[AnswerSentence], checked: list[list[Citation]], removed: list[dict[str, Any]]
) -> str:
    """What the next attempt must fix: each unsupported sentence and why."""
    lines = [FEEDBACK_INTRO]
    for i, (sentence, citations) in enumerate(zip(sentences, checked, strict=True)):
        if sentence["verdict"] != "unsupported":
            continue
        dropped = [f"[{r['number']}] ({r['why']})" for r in removed if r["sentence"] == i]
        if citations:
            not_stated = FEEDBACK_NOT_STATED_BY_ONE if len(citations) == 1 else FEEDBACK_NOT_STATED_BY_SEVERAL
            why = not_stated.format(markers=_markers(citations))
        else:
            why = FEEDBACK_NO_VALID_SOURCE
            if dropped:
                why += FEEDBACK_REMOVED.format(removed=", ".join(dropped))
        lines.append(FEEDBACK_SENTENCE.format(sentence=strip_citations(sentence["text"]), why=why))
    lines.append(FEEDBACK_REWRITE)
    return "\n".join(lines)


def _markers(citations: list[Citation]) -> str:
    return "".join(f"[{c['number']}]" for c in citations)


def _by_number(checked: list[list[Citation]]) -> list[Citation]:
    """One citation per number in the text: the occurrence with the most support."""
    best: dict[int, Citation] = {}
    for citation in (c for cs in checked for c in cs):
        held = best.get(citation["number"])
        if held is None or citation["support"] > held["support"]:
            best[citation["number"]] = citation
    return [best[n] for n in sorted(best)]
