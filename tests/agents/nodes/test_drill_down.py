"""Drill down: a question that names its document by the words of the document's first lines and asks for one
field in it gets that field's passage second in rerank and quoted in the offline answer (real Chroma, real
ONNX model); prose openings do not count as naming."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from agents.nodes import _drill
from agents.nodes._focus import focus_in
from agents.nodes.answer import _Candidate, _with_drilled, answer_question
from agents.nodes.rerank import rerank_passages
from agents.nodes.retrieve import passage_from_hit
from agents.state import AgentState, Passage
from retrieval.hits import SentenceVector
from retrieval.index import Index
from retrieval.models import Document, Span
from tests.agents.nodes.indexes import ingested_index
from tests.agents.nodes.test_links_chain import runtime_for

OPENING = [
    "Location: Latrobe, PA Accident Number: NYC08CA048",
    "Date & Time: 11/28/2007, 1433 EST Registration: N103JT",
    "Aircraft: Vans Aircraft RV-8 Aircraft Damage: Substantial",
]
NARRATIVE = [
    "On his third landing of the day, the pilot touched down near the displaced runway threshold.",
    "The airplane began to veer left and right, so the pilot applied power and climbed.",
    "It then stalled and struck the ground left wingtip first near the runway.",
    "The left wing and the left main landing gear separated from the airframe.",
]
FIELDS = [
    "Certificate: Private Age: 61, Male",
    "Flight Time: 475 hours (Total, all aircraft), 3 hours (Total, this make and model)",
    "Engine Manufacturer: Lycoming Engine Model/Series: IO-360",
    "Airport Elevation: 1201 ft Runway Surface Condition: Dry",
    "Model/Series: RV-8 Aircraft Category: Airplane",
    "Time Since Last Inspection: 20 Hours Engines: 1 Reciprocating",
    "Airframe Total Time: 890 Hours at time of accident",
    "Flight Time: 12 hours (Last 90 days, all aircraft), 4 hours (Last 30 days, all aircraft)",
    "Aircraft Make: Vans Aircraft Amateur Built: Yes",
]
TITLE = "National Transportation Safety Board"
QUESTION = "How many hours in the make and model did the pilot of Vans RV-8 N103JT have at Latrobe, PA?"
ANSWER_ROW = FIELDS[1]


def _report(doc_id: str = "report.pdf", names: dict[str, str] | None = None) -> Document:
    """The report, or (with ``names`` replaced) another accident's report on the same form."""
    lines = OPENING + NARRATIVE + FIELDS
    for old, new in (names or {}).items():
        lines = [line.replace(old, new) for line in lines]
    text = "\n".join(lines)
    rows = [Span(text.index(line), text.index(line) + len(line)) for line in lines if line not in NARRATIVE]
    return Document(doc_id=doc_id, title=TITLE, text=text, source=doc_id, rows=rows)


OTHERS = [
    _report(f"other-{n}.pdf", {"Latrobe, PA": place, "N103JT": tail, "Vans Aircraft RV-8": aircraft})
    for n, (place, tail, aircraft) in enumerate(
        [
            ("Wausau, WI", "N2151J", "Cessna 172"),
            ("Belen, NM", "N74SR", "Sorrell SNJ-7"),
            ("Madill, OK", "N6135M", "Cessna 152"),
        ]
    )
]


def _rare(terms: set[str]) -> dict[str, float]:
    return dict.fromkeys(terms, 0.1)


def _common(terms: set[str]) -> dict[str, float]:
    return dict.fromkeys(terms, 1.0)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Index:
    documents = [_report(), *OTHERS]
    return ingested_index(tmp_path_factory.mktemp("drill"), embedder, documents, chunk_tokens=64)


def _first_chunk_order(index: Index) -> list[Passage]:
    """The report's chunks with the opening (which repeats the question's names) ranked first."""
    chunks = index.chunks_of("report.pdf")
    assert len(chunks) >= 3 and ANSWER_ROW not in chunks[0].text
    return [passage_from_hit(chunks[0], 1.0)] + [
        passage_from_hit(c, 0.1) for c in chunks[1:] if ANSWER_ROW not in c.text
    ]


def _unit(text: str, role: str = "sentence") -> SentenceVector:
    return SentenceVector("d#t0", "d", text, 0, len(text), np.zeros(3, dtype=np.float32), role=role)  # type: ignore[arg-type]


def _report_units() -> list[SentenceVector]:
    return [_unit(line, "sentence" if line in NARRATIVE else "row") for line in OPENING + NARRATIVE + FIELDS]


def test_names_from_form_lines_leave_what_is_asked() -> None:
    focus = focus_in(QUESTION, _report_units(), title=TITLE, share=_rare)
    assert "N103JT" not in focus.text and "Latrobe," not in focus.text
    assert {"hour", "make", "model"} <= focus.terms


def test_an_opening_of_prose_sentences_names_nothing_beyond_the_title() -> None:
    question = "When did Nikola Tesla move to New York in 1884?"
    units = [_unit("Nikola Tesla was an inventor who moved to New York in 1884.")] * 8 + [
        _unit("In 1884 he moved to New York to work for Edison.")
    ]
    focus = focus_in(question, units, title="Nikola Tesla", share=_rare)
    assert focus.text == "When did move to New York in 1884?"


def test_words_most_documents_hold_are_what_is_asked_not_names() -> None:
    question = "What time did the accident happen?"
    assert focus_in(question, _report_units(), title=TITLE, share=_common).text == question


def test_a_focus_the_document_does_not_hold_is_no_focus() -> None:
    question = "What did the pilot of N103JT eat at Latrobe?"
    assert focus_in(question, _report_units(), title=TITLE, share=_rare).text == question


def test_a_question_made_only_of_names_keeps_them_all() -> None:
    focus = focus_in("Vans RV-8 N103JT Latrobe", _report_units(), title=TITLE, share=_rare)
    assert focus.text == "Vans RV-8 N103JT Latrobe"


def test_rerank_puts_the_asked_fields_passage_before_a_first_passage_of_names(index: Index) -> None:
    order = _first_chunk_order(index)
    state = AgentState(question=QUESTION, variants=[], retrieved=order)
    ranked = rerank_passages(state, runtime_for(index, rerank={"chain": False}))["ranked"]
    assert ANSWER_ROW in ranked[0]["text"]
    assert ranked[1]["chunk_id"] == order[0]["chunk_id"]
    off = runtime_for(index, rerank={"chain": False, "drill_down": False})
    unchanged = rerank_passages(state, off)["ranked"]
    assert all(ANSWER_ROW not in p["text"] for p in unchanged)


def test_a_first_passage_holding_one_of_the_best_units_keeps_its_place(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = _first_chunk_order(index)
    runtime = runtime_for(index)
    found = _drill.best_unit(QUESTION, "report.pdf", runtime.context)
    assert found is not None
    in_first = next(u for u in found.ranking if order[0]["start"] <= u.start and u.end <= order[0]["end"])
    runner_up = [found.unit, in_first, *(u for u in found.ranking if u not in (found.unit, in_first))]
    monkeypatch.setattr(_drill, "best_unit", lambda *_: replace(found, ranking=runner_up))
    moved = _drill.drilled(QUESTION, order, runtime.context)
    assert moved[0]["chunk_id"] == order[0]["chunk_id"]
    assert ANSWER_ROW in moved[1]["text"]


@pytest.mark.parametrize("drill_down", [True, False])
def test_the_offline_answer_quotes_the_asked_field_not_the_line_naming_the_report(
    index: Index, drill_down: bool
) -> None:
    chunks = index.chunks_of("report.pdf")
    holding = next(c for c in chunks if ANSWER_ROW in c.text)
    ranked = [passage_from_hit(chunks[0], 1.0), passage_from_hit(holding, 0.5)]
    state = AgentState(question=QUESTION, variants=[], ranked=ranked)
    answer = answer_question(state, runtime_for(index, rerank={"drill_down": drill_down}))
    assert ANSWER_ROW in answer["answer_text"]
    assert ("Accident Number" in answer["answer_text"]) is not drill_down


def _candidate(number: int, sentence_id: str, score: float) -> _Candidate:
    unit = SentenceVector(sentence_id, "d", sentence_id, number, number + 1, np.zeros(3, dtype=np.float32))
    return _Candidate(number=number, unit=unit, score=score, meaning=score)


def test_the_drilled_unit_takes_the_weakest_pick_s_place() -> None:
    best, weak, drilled = _candidate(1, "a", 0.9), _candidate(2, "b", 0.5), _candidate(3, "c", 0.4)
    chosen = _with_drilled([best, weak], [best, weak, drilled], "c", limit=2)
    assert [c.unit.sentence_id for c in chosen] == ["a", "c"]


def test_a_drilled_unit_already_chosen_or_below_every_floor_changes_nothing() -> None:
    best, weak = _candidate(1, "a", 0.9), _candidate(2, "b", 0.5)
    assert _with_drilled([best, weak], [best, weak], "b", limit=2) == [best, weak]
    assert _with_drilled([best, weak], [best, weak], "not-a-candidate", limit=2) == [best, weak]
