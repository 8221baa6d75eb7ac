"""Titles that link documents: which documents a text names, in the TitleIndex and through a real Index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retrieval.config import IndexConfig
from retrieval.index import Index
from retrieval.links import TitleIndex
from retrieval.models import Document

TITLES = {
    "film": "Black Book (film)",
    "actress": "Halina Reijn",
    "soundtrack": "American Beauty (soundtrack)",
    "movie": "American Beauty (1999 film)",
    "notes": "Notes",
    "black": "Black",
    "short": "Up",
    "blank": "",
    "aapl": "Form 10-K",
    "msft": "Form 10-K",
    "form": "Form",
}


@pytest.fixture
def titles() -> TitleIndex:
    return TitleIndex(TITLES)


def test_a_title_is_named_as_whole_words_in_any_case(titles: TitleIndex) -> None:
    assert titles.named_in("It stars HALINA REIJN.") == ["actress"]
    assert titles.named_in("halinareijn and Reijnhalina") == []


def test_the_disambiguation_may_be_left_out_only_when_one_document_has_that_name(titles: TitleIndex) -> None:
    assert titles.named_in("Black Book was shot in 2005.") == ["film"]
    assert titles.named_in("What do American Beauty and Fargo share?") == []
    assert titles.named_in("American Beauty (soundtrack) came out in 2000.") == ["soundtrack"]


def test_a_title_that_several_documents_share_names_none_of_them(titles: TitleIndex) -> None:
    assert titles.named_in("See the Form 10-K for 2023.") == []
    assert titles.named_in("Fill in the Form.") == ["form"]


def test_the_longest_title_wins_where_titles_overlap(titles: TitleIndex) -> None:
    assert titles.named_in("Black Book is not Black.") == ["film", "black"]


def test_a_one_word_title_counts_only_where_it_is_capitalised(titles: TitleIndex) -> None:
    assert titles.named_in("I took notes on it.") == []
    assert titles.named_in("Notes keeps the minutes.") == ["notes"]


def test_very_short_and_empty_titles_never_match(titles: TitleIndex) -> None:
    assert titles.named_in("Up the hill and down.") == []


def test_excluded_documents_and_repeats_are_left_out(titles: TitleIndex) -> None:
    text = "Halina Reijn starred in Black Book; Halina Reijn again."
    assert titles.named_in(text) == ["actress", "film"]
    assert titles.named_in(text, exclude=["actress"]) == ["film"]


def test_titles_survive_a_save_and_load(titles: TitleIndex, tmp_path: Path) -> None:
    titles.save(tmp_path / "titles.json")
    loaded = TitleIndex.load(tmp_path / "titles.json")
    assert loaded.titles == TITLES
    assert loaded.named_in("the Form 10-K") == []
    assert loaded.named_in("Black Book stars Halina Reijn.") == ["film", "actress"]


def document(doc_id: str, title: str, text: str) -> Document:
    return Document(doc_id=doc_id, title=title, text=text, source=doc_id)


def test_an_index_names_its_stored_documents_and_forgets_removed_ones(embedder: Any, tmp_path: Path) -> None:
    config = IndexConfig.model_validate({"home": tmp_path / "home"})
    index = Index(config, embedder=embedder)
    index.ingest_documents(
        [
            document(
                "film.txt", "Black Book (film)", "Black Book is a 2006 Dutch film starring Halina Reijn."
            ),
            document("reijn.txt", "Halina Reijn", "Halina Reijn is a Dutch actress and writer."),
        ]
    )
    text = "Black Book made Halina Reijn famous."
    assert index.documents_named_in(text) == ["film.txt", "reijn.txt"]
    assert index.documents_named_in(text, exclude=["film.txt"]) == ["reijn.txt"]
    assert Index(config, embedder=embedder).documents_named_in(text) == ["film.txt", "reijn.txt"]

    assert index.remove("reijn.txt")
    assert index.documents_named_in(text) == ["film.txt"]


def test_the_nearest_chunk_of_each_document_comes_in_the_order_asked(embedder: Any, tmp_path: Path) -> None:
    index = Index(IndexConfig.model_validate({"home": tmp_path / "home"}), embedder=embedder)
    index.ingest_documents(
        [
            document(
                "film.txt", "Black Book (film)", "Black Book is a 2006 Dutch film starring Halina Reijn."
            ),
            document("reijn.txt", "Halina Reijn", "Halina Reijn is a Dutch actress and writer."),
        ]
    )
    vector = embedder.embed_query("Dutch actress and writer")
    found = index.nearest_chunk_of_each(vector, ["film.txt", "missing.txt", "reijn.txt"])
    assert [h.doc_id for h in found] == ["film.txt", "reijn.txt"]
    assert found[1].score > found[0].score
    assert index.nearest_chunk_of_each(vector, []) == []


def test_a_document_is_named_by_an_identifier_in_its_file_name() -> None:
    titles = TitleIndex(
        {
            "docs/NCT06152666_Prot_000.pdf": "Study Protocol",
            "docs/NCT06152679_Prot_000.pdf": "Study Protocol",
            "reports/2023/CEN19FA123.pdf": "National Transportation Safety Board",
            "reports/2023/CEN19FA124.pdf": "National Transportation Safety Board",
        }
    )
    question = "Which study plans longer interviews, NCT06152679 or nct06152666?"
    assert titles.named_in(question) == ["docs/NCT06152679_Prot_000.pdf", "docs/NCT06152666_Prot_000.pdf"]
    assert titles.named_in("the accident CEN19FA124") == ["reports/2023/CEN19FA124.pdf"]
    assert titles.named_in("Prot 000 from 2023, version 00000") == []
