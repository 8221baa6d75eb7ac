"""Row and form-line detection over lines of text, and the title rules, as pure functions."""

from __future__ import annotations

import pytest

from retrieval.tables import TextLine, cells, find_rows, pipe_table_rows, text_lines
from retrieval.titles import choose_title, first_line_title, is_recognisable


def gapped(text: str, *cells_text: str) -> list[TextLine]:
    """Lines of ``text``; a line listed in ``cells_text`` as "a|b|c" gets column gaps between its cells."""
    marked = {cell.replace("|", " "): cell for cell in cells_text}
    lines = []
    for line in text_lines(text):
        cut = marked.get(line.text)
        gaps = tuple(i for i, char in enumerate(cut) if char == "|") if cut else ()
        lines.append(TextLine(start=line.start, text=line.text, gaps=gaps))
    return lines


def row_texts(text: str, lines: list[TextLine]) -> list[str]:
    return [text[span.start : span.end] for span in find_rows(lines)]


FORM = (
    "Aircraft and Owner/Operator Information\n"
    "Airframe Total Time: 3861 Hours at time of \n"
    "accident\n"
    "Engine Manufacturer: Lycoming\n"
    "Registered Owner: Willis O Forman Rated Power:\n"
)


def test_form_lines_are_rows_with_their_lowercase_continuation():
    assert row_texts(FORM, text_lines(FORM)) == [
        "Airframe Total Time: 3861 Hours at time of \naccident",
        "Engine Manufacturer: Lycoming",
        "Registered Owner: Willis O Forman Rated Power:",
    ]


PROSE = (
    "The pilot, age 85, was attempting to land a Piper PA-22-150 at his private airstrip. While on\n"
    "final approach for the 1,500-foot-long turf strip, the airplane contacted trees, then utility wires,\n"
    "and came to rest upright. The reported weather about the time of the accident included calm\n"
    "winds, a broken ceiling at 9,000 feet, and visibility 10 miles. The pilot reported a total of\n"
    "2,319 hours 17 hours 90 days.\n"
)


def test_wrapped_prose_makes_no_rows():
    assert find_rows(text_lines(PROSE)) == []


def test_figures_after_an_unfinished_line_are_prose_but_alone_are_a_row():
    row = "Hypotension 205 (39%) 15 (3%) 375 (71%)"
    assert row_texts(row, text_lines(row)) == [row]
    lines = text_lines("The patients in the trial were divided into three groups of\n2,319 12 13 14")
    assert find_rows(lines) == []


def test_a_row_running_on_over_many_lowercase_lines_is_a_paragraph():
    text = "Note: this is\nwrapped over\nmany more\nlines than\na row has"
    assert find_rows(text_lines(text)) == []


TABLE = (
    "Adverse events\n"
    "System Grade 3 Grade 4\n"
    "Chills 70 (13%) 0 (0%)\n"
    "Fever 29 (6%) 5 (1%)\n"
    "Malaise 43 (8%) 0 (0%)\n"
)


def test_column_rows_under_a_header_are_labelled_with_its_cells():
    lines = gapped(TABLE, "System|Grade 3|Grade 4", "Chills|70 (13%)|0 (0%)", "Fever|29 (6%)|5 (1%)")
    lines[4] = TextLine(start=lines[4].start, text=lines[4].text, gaps=(7, 15))
    rows = find_rows(lines, page=3)
    assert [TABLE[r.start : r.end] for r in rows] == TABLE.splitlines()[1:]
    assert [r.label for r in rows] == [(), *[("System", "Grade 3", "Grade 4")] * 3]
    assert {r.page for r in rows} == {3}
    assert cells(lines[2]) == ("Chills", "70 (13%)", "0 (0%)")


def test_a_first_row_with_a_figure_cell_is_no_header():
    text = "Screening 1 2\nTraining 3 4\nRecruiting 5 6\n"
    lines = gapped(text, "Screening|1|2", "Training|3|4", "Recruiting|5|6")
    assert [r.label for r in find_rows(lines)] == [(), (), ()]


def test_a_gap_after_a_list_marker_is_not_a_column():
    text = "1. Silverman LB, Weinstein HJ. Treatment of childhood leukemia in a review of many trials"
    assert find_rows(gapped(text, text.replace(" ", "|", 1))) == []


def test_rows_never_overlap_and_hold_their_text():
    text = FORM + PROSE + TABLE
    rows = find_rows(text_lines(text))
    assert all(a.end <= b.start for a, b in zip(rows, rows[1:], strict=False))
    assert all(text[r.start : r.end] == text[r.start : r.end].strip() for r in rows)


def test_pipe_table_body_lines_are_rows_labelled_with_the_header():
    text = "# Sales\n\n| Quarter | Net sales |\n|---|--:|\n| Q1 | $81,797 |\n| Q2 | $94,836 |\n\nAfter."
    rows = pipe_table_rows(text)
    assert [text[r.start : r.end] for r in rows] == ["| Q1 | $81,797 |", "| Q2 | $94,836 |"]
    assert [r.label for r in rows] == [("Quarter", "Net sales")] * 2


@pytest.mark.parametrize(
    ("title", "recognisable"),
    [
        ("0000320193-23-000077", False),
        ("report_v2.docx", False),
        ("NCT06149832_Prot_000", False),
        ("Microsoft Word - Protocol-230315.docx", False),
        ("  ", False),
        ("Untitled", False),
        ("Quarterly Report", True),
        ("Handbook", True),
        ("Word counts in English", True),
    ],
)
def test_identifiers_and_producer_titles_are_not_recognisable(title, recognisable):
    assert is_recognisable(title) is recognisable


def test_first_line_title_skips_page_numbers_labels_running_heads_and_prose():
    text = (
        "Page 1 of 4\nCONFIDENTIAL\nVersion: v1.0\n"
        "continued from the cover\nTreatment of Oral Chronic Graft-versus-host Disease\nBody."
    )
    assert first_line_title(text) == "Treatment of Oral Chronic Graft-versus-host Disease"
    assert first_line_title("Study Protocol\nOfficial Title: Access-H20: a smart faucet\nText") == (
        "Access-H20: a smart faucet"
    )
    assert first_line_title("Some words\n" + "word " * 30) is None


def test_choose_title_takes_the_first_recognisable_candidate_else_the_stem():
    assert choose_title(["Microsoft Word - null.doc", None, "Faculty of Medicine"], fallback="f") == (
        "Faculty of Medicine"
    )
    assert choose_title(["0000320193-23-000077", None], fallback="aapl-q3") == "aapl-q3"
