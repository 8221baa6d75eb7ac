"""Table rows and form lines as answers: quoted offline with their headers, preferred for figure questions,
one per document for questions about several, shown to the model with their headers and cited by verify."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from agents.nodes._text import headed_rows
from agents.nodes.answer import _Candidate, _preferred, answer_question, format_sources
from agents.nodes.retrieve import passage_from_hit
from agents.nodes.verify import verify_answer
from agents.state import AgentState, Passage
from retrieval.config import IndexConfig
from retrieval.hits import SentenceVector
from retrieval.index import Index
from retrieval.models import Document, Span
from tests.agents.nodes.test_answer_verify import ScriptedModel, merged, runtime_for


def _document(doc_id: str, title: str, lines: list[str], rows: Mapping[str, tuple[str, ...]]) -> Document:
    text = "\n".join(lines)
    spans = [Span(text.index(row), text.index(row) + len(row), label) for row, label in rows.items()]
    return Document(doc_id=doc_id, title=title, text=text, source=doc_id, rows=spans)


FORM = _document(
    "ntsb.pdf",
    "Aviation Investigation Final Report NYC08CA055",
    [
        "Page 2 of 4 NYC08CA055",
        "Pilot Information",
        "Age: 52",
        "Certificate: Commercial",
        "Flight Time: 1,250 hours (Total, all aircraft)",
        "The pilot reported that the engine lost power shortly after takeoff from the airport. "
        "He made a forced landing in a field, where the airplane struck a fence.",
        "Date & Time: March 15, 2008, 14:30 EDT",
        "Airport Elevation: 1,028 ft msl",
    ],
    {
        "Page 2 of 4 NYC08CA055": (),
        "Age: 52": (),
        "Certificate: Commercial": (),
        "Flight Time: 1,250 hours (Total, all aircraft)": (),
        "Date & Time: March 15, 2008, 14:30 EDT": (),
        "Airport Elevation: 1,028 ft msl": (),
    },
)
PAGES = (
    "Location: Tallahassee, FL Accident Number: NYC08CA055\n"
    "Aircraft: Piper PA-22-150 Aircraft Damage: Substantial\n"
    "The pilot, age 85, was attempting to land the airplane at his private airstrip.",
    "Airframe Total Time: 3861 Hours at time of accident\nEngine Manufacturer: Lycoming",
)
PAGES_TEXT = "\n".join(PAGES)
TWO_PAGES = Document(
    doc_id="pages.pdf",
    title="Aviation Accident Final Report",
    text=PAGES_TEXT,
    source="pages.pdf",
    pages=[Span(0, len(PAGES[0]), (), 1), Span(len(PAGES[0]) + 1, len(PAGES_TEXT), (), 2)],
    rows=[
        Span(PAGES_TEXT.index(line), PAGES_TEXT.index(line) + len(line))
        for line in PAGES_TEXT.split("\n")
        if ":" in line
    ],
)
MONTHS = ("Three Months Ended July 1, 2023", "Three Months Ended June 25, 2022")
SALES = "Total net sales    $81,797    $82,959"
FILING = _document(
    "q3.pdf",
    "Apple Inc. Form 10-Q for the quarter ended July 1, 2023",
    [
        "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited)",
        "Products    $60,584    $63,355",
        "Services    21,213    19,604",
        SALES,
        "Net income    $19,881    $19,442",
        "The Company's fiscal year is the 52- or 53-week period that ends on the last Saturday of September.",
    ],
    {row: MONTHS for row in ("Products    $60,584    $63,355", "Services    21,213    19,604", SALES)}
    | {"Net income    $19,881    $19,442": MONTHS},
)
QUARTERS = [
    _document(
        f"{quarter}.pdf",
        f"Apple Inc. Form 10-Q for the quarter ended {ended}",
        ["CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS", f"Total net sales    {sales}"],
        {f"Total net sales    {sales}": (f"Three Months Ended {ended}",)},
    )
    for quarter, ended, sales in [
        ("q1", "December 31, 2022", "$117,154"),
        ("q2", "April 1, 2023", "$94,836"),
        ("q3b", "July 1, 2023", "$81,797"),
    ]
]


@pytest.fixture(scope="module")
def index(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Index:
    built = Index(IndexConfig.model_validate({"home": tmp_path_factory.mktemp("index")}), embedder=embedder)
    built.ingest_documents([FORM, FILING, TWO_PAGES, *QUARTERS])
    return built


def _passage(index: Index, doc_id: str, page: int = 0) -> Passage:
    records = index.store.get("chunks", where={"doc_id": doc_id})
    hits = sorted(index.chunks([r.id for r in records]), key=lambda h: h.start)
    return passage_from_hit(hits[page], 1.0)


def _state(question: str, ranked: list[Passage]) -> AgentState:
    return AgentState(question=question, ranked=ranked, retrieved=ranked, attempts=0)


def _answer(index: Index, question: str, *doc_ids: str) -> list[str]:
    runtime, _ = runtime_for(index)
    answered = answer_question(_state(question, [_passage(index, d) for d in doc_ids]), runtime)
    return [s["text"] for s in answered["sentences"]]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How old was the pilot?", "Age: 52 [1]"),
        ("What was the pilot's age?", "Age: 52 [1]"),
        ("What time did the accident happen?", "Date & Time: March 15, 2008, 14:30 EDT [1]"),
        ("What was the elevation of the airport?", "Airport Elevation: 1,028 ft msl [1]"),
    ],
)
def test_a_figure_question_quotes_the_form_line_holding_the_figure(
    index: Index, question: str, expected: str
) -> None:
    quoted = _answer(index, question, "ntsb.pdf")
    assert quoted[0] == expected
    assert not any("Page 2 of 4" in q for q in quoted)


def test_a_table_row_is_quoted_after_its_column_headers(index: Index) -> None:
    question = "What was Apple's total net sales for the three months ended July 1, 2023?"
    quoted = _answer(index, question, "q3.pdf")
    assert quoted[0] == f"{' | '.join(MONTHS)} | {SALES} [1]"


def test_a_question_about_each_document_quotes_one_row_of_each(index: Index) -> None:
    quoted = _answer(
        index, "What were Apple's total net sales in each quarter?", "q1.pdf", "q2.pdf", "q3b.pdf"
    )
    assert [q[-3:] for q in quoted] == ["[1]", "[2]", "[3]"]
    assert all("Total net sales" in q for q in quoted)


def test_a_form_field_on_another_ranked_page_of_the_quoted_document_is_quoted(index: Index) -> None:
    question = "What was the airframe total time of the Piper PA-22-150 in the Tallahassee accident?"
    ranked = [_passage(index, "pages.pdf"), _passage(index, "q3.pdf"), _passage(index, "pages.pdf", 1)]
    runtime, _ = runtime_for(index)
    answered = answer_question(_state(question, ranked), runtime)
    quoted = [s["text"] for s in answered["sentences"]]
    assert "Airframe Total Time: 3861 Hours at time of accident [3]" in quoted
    assert not any(q.endswith("[2]") for q in quoted)


def _unit(text: str, role: str = "sentence", start: int = 0) -> SentenceVector:
    return SentenceVector(f"d#{start}", "d", text, start, start + len(text), np.zeros(2), role=role)  # type: ignore[arg-type]


def test_a_row_without_the_questions_words_yields_to_a_sentence_with_them() -> None:
    row = _Candidate(number=1, unit=_unit("Fuel on board: 40 gallons", "row"), score=0.9, meaning=0.9)
    sentence = _Candidate(
        number=1,
        unit=_unit("The engine lost power because of carburetor ice.", start=40),
        score=0.6,
        meaning=0.6,
    )
    assert _preferred("Why did the engine lose power?", [row, sentence]) == [sentence]
    asked_about_fuel = _preferred("How much fuel was on board?", [row, sentence])
    assert asked_about_fuel == [row]


def test_the_model_reads_rows_after_their_headers(index: Index) -> None:
    ranked = [_passage(index, "q3.pdf"), _passage(index, "ntsb.pdf")]
    sources = format_sources(ranked, headed_rows(ranked, index))
    assert f"{' | '.join(MONTHS)} | {SALES}" in sources
    assert "\nAge: 52\n" in sources
    assert format_sources(ranked) == format_sources(ranked, {})
    assert f"\n{SALES}\n" in format_sources(ranked)


def test_an_llm_answer_sees_the_headers_and_verify_cites_the_row(index: Index) -> None:
    reply = "Total net sales for the three months ended July 1, 2023 were $81,797 million [1]."
    judgement = {"index": 0, "verdict": "supported", "reason": "the row states it"}
    model = ScriptedModel(answers=[reply], judgements=[{"judgements": [judgement]}])
    runtime, _ = runtime_for(index, llm=model)
    state = _state(
        "What was Apple's total net sales for the three months ended July 1, 2023?",
        [_passage(index, "q3.pdf")],
    )
    answered = answer_question(state, runtime)
    verified = verify_answer(merged(state, answered), runtime)
    prompts = [messages[-1]["content"] for _, messages in model.calls]
    assert all(f"{' | '.join(MONTHS)} | {SALES}" in p for p in prompts) and len(prompts) == 2
    (citation,) = verified["citations"]
    assert citation["quote"] == SALES
    assert FILING.text[citation["start"] : citation["end"]] == SALES


def test_an_offline_row_quote_is_grounded_in_its_row(index: Index) -> None:
    runtime, _ = runtime_for(index)
    state = _state(
        "What was Apple's total net sales for the three months ended July 1, 2023?",
        [_passage(index, "q3.pdf")],
    )
    answered = answer_question(state, runtime)
    verified = verify_answer(merged(state, answered), runtime)
    (citation,) = verified["citations"]
    assert (citation["quote"], citation["grounded"], citation["verdict"]) == (SALES, True, "supported")
