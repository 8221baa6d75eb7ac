"""What a question asks for and what an answer may quote: a figure or a date lifts the unit holding one in
the drill-down (real Chroma, real ONNX model), PDF text that lost its full stops is still quotable, and a
question may name its document by the file name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.nodes import _drill
from agents.nodes._asks import asked_kind
from agents.nodes.answer import _Candidate, _quotable, _relevance_of
from agents.state import Passage
from retrieval.hits import SentenceVector
from retrieval.index import Index
from retrieval.models import Document
from tests.agents.nodes.indexes import ingested_index
from tests.agents.nodes.test_links_chain import runtime_for


@pytest.mark.parametrize(
    ("question", "holder", "not_holder"),
    [
        ("How many Grammys has Lady Gaga won?", "She has won six Grammy Awards.", "She won Grammy Awards."),
        (
            "How often is the dose given?",
            "The dose is given every 4 weeks.",
            "The dose is given by injection.",
        ),
        ("What IRB number does the protocol give?", "IRB No. 0206/66", "Approved by the review board"),
        ("When did interest in Tesla revive?", "Interest revived in the 1990s.", "Tesla died on 7 January."),
    ],
)
def test_a_question_asking_for_a_figure_or_date_knows_the_units_holding_one(
    question: str, holder: str, not_holder: str
) -> None:
    kind = asked_kind(question)
    assert kind is not None
    assert kind.held_by(holder)
    assert not kind.held_by(not_holder)


def test_a_figure_the_question_names_is_not_what_it_asks_for() -> None:
    kind = asked_kind("How many seconds were left after the 2-point conversion?")
    assert kind is not None
    assert not kind.held_by("They missed the 2-point conversion.")
    assert kind.held_by("With 17 seconds left, they missed it.")


@pytest.mark.parametrize("question", ["Who supervised the trial?", "What is happening to the average age?"])
def test_a_question_asking_for_neither_has_no_kind(question: str) -> None:
    assert asked_kind(question) is None


MAINTENANCE = "Maintenance continues with the same dose every 4 weeks for 6 months"
PROTOCOL = [
    "Low-dose emicizumab prophylaxis in severe hemophilia A: a crossover study.",
    "Patients receive low-dose emicizumab during the maintenance period of the study.",
    "The maintenance period of the study follows the loading period.",
    f"{MAINTENANCE}.",
    "Bleeding events are recorded in a diary by each patient.",
    "Joint health is scored at the start and at the end of the study.",
    "Factor VIII prophylaxis is given to the comparator group.",
]
ASKED = "How often is low-dose emicizumab given during the maintenance period of the study?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Index:
    documents = [
        Document(doc_id="protocol.pdf", title="Protocol", text=" ".join(PROTOCOL), source="protocol.pdf")
    ]
    return ingested_index(tmp_path_factory.mktemp("kinds"), embedder, documents, chunk_tokens=48)


def test_the_drill_down_lifts_the_unit_holding_the_asked_figure(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    bonus_by_default = _drill.ASKED_KIND_BONUS

    def best_text(bonus: float) -> str:
        monkeypatch.setattr(_drill, "ASKED_KIND_BONUS", bonus)
        found = _drill.best_unit(ASKED, "protocol.pdf", runtime_for(index).context)
        assert found is not None
        return found.unit.text

    assert MAINTENANCE not in best_text(1.0)
    assert MAINTENANCE in best_text(bonus_by_default)


def _sentence(text: str, role: str = "sentence") -> SentenceVector:
    return SentenceVector("d#t0", "d", text, 0, len(text), np.zeros(3, dtype=np.float32), role=role)  # type: ignore[arg-type]


def test_a_long_unit_that_lost_its_full_stop_is_quotable_a_heading_is_not() -> None:
    assert _quotable(_sentence(f"First month, loading dose every 2 weeks. {MAINTENANCE}"))
    assert not _quotable(_sentence("5.1.3 Inclusion Criteria"))
    assert not _quotable(_sentence("Study Period and Duration"))
    assert _quotable(_sentence("The dose is given every 4 weeks."))


def test_a_question_may_name_its_document_by_file_name() -> None:
    text = "As a feasibility study, the number of subjects is set at a minimum of 30."
    passage = Passage(
        chunk_id="c0", doc_id="docs/NCT06156735_Prot_SAP_000.pdf", title="Study Protocol", text=text,
        start=0, end=len(text), section="", page=1, score=1.0,
    )  # fmt: skip
    quoted = _Candidate(number=1, unit=_sentence(text), score=0.7, meaning=0.7)
    question = "What is the minimum number of subjects planned for the feasibility trial (NCT06156735)?"
    assert _relevance_of(question, [quoted], [passage]).answers
    elsewhere = Passage(**{**passage, "doc_id": "docs/NCT00000001_Prot.pdf"})  # type: ignore[typeddict-item]
    assert "NCT06156735" in _relevance_of(question, [quoted], [elsewhere]).why_not
