"""The PDF loader's fast path for column gaps (pdfium's character boxes read into reused buffers, spaces
found with str.find, raw offsets built per line) finds exactly what the plain per-character walk through
pypdfium2's ``get_charbox`` found, so the rows it makes stay the same."""

from __future__ import annotations

import statistics

import pypdfium2 as pdfium
import pytest

from retrieval.pdf import _COLUMN_GAP, _column_gaps, _lines_with_gaps, _raw_offsets
from retrieval.tables import TextLine, text_lines
from tests.retrieval.test_loader_rows import FORM_PAGE, TABLE_PAGE, make_pdf, prose


def _walked_offsets(raw: str) -> list[int]:
    offsets: list[int] = []
    index = 0
    while index < len(raw):
        offsets.append(index)
        index += 2 if raw.startswith("\r\n", index) else 1
    return offsets


def _walked_lines(textpage: pdfium.PdfTextPage, raw: str, text: str) -> list[TextLine]:
    """Column gaps as the loader found them before: every character visited, boxes from ``get_charbox``."""
    lines = text_lines(text)
    to_raw = _walked_offsets(raw)
    spans: dict[int, list[tuple[int, float]]] = {}
    widths: list[float] = []
    for number, line in enumerate(lines):
        for position, char in enumerate(line.text):
            if char != " " or position == 0 or position == len(line.text) - 1:
                continue
            at = to_raw[line.start + position]
            left, _, right, _ = textpage.get_charbox(at - 1)
            following, _, _, _ = textpage.get_charbox(at + 1)
            if right > left:
                widths.append(right - left)
            spans.setdefault(number, []).append((position, following - right))
    if not widths:
        return lines
    threshold = _COLUMN_GAP * statistics.median(widths)
    return [
        TextLine(start=line.start, text=line.text, gaps=_column_gaps(spans.get(number, []), threshold))
        for number, line in enumerate(lines)
    ]


@pytest.mark.parametrize(
    "raw",
    ["", "a", "ab\r\ncd", "a\r\n", "\r\n\r\nx", "a\rb\r\nc", "\r\r\n", "a \r\n\r\n  b\r", "só\r\nñ"],
)
def test_raw_offsets_match_the_character_walk(raw: str) -> None:
    offsets = _raw_offsets(raw)
    assert offsets == _walked_offsets(raw)
    assert len(offsets) == len(raw.replace("\r\n", "\n").replace("\r", "\n"))


SPACED_PAGE = [
    *(FORM_PAGE or []),
    (72, 600, "A  line with  doubled spaces and a trailing space "),
    (72, 586, " a leading space, then  one  word"),
    *prose(560, "x y z single letters between spaces", "I  a  m"),
]


@pytest.mark.parametrize("page", [SPACED_PAGE, TABLE_PAGE], ids=["form-and-prose", "table"])
def test_column_gaps_match_pypdfium2_charboxes(page: list[tuple[float, float, str]]) -> None:
    pdf = pdfium.PdfDocument(make_pdf([page]))
    try:
        textpage = pdf[0].get_textpage()
        raw = textpage.get_text_range()
        text = raw.replace("\r\n", "\n").replace("\r", "\n")
        fast = _lines_with_gaps(textpage, raw, text)
        walked = _walked_lines(textpage, raw, text)
    finally:
        pdf.close()
    assert "\r\n" in raw  # the page's lines are joined as pdfium joins them
    assert any(line.gaps for line in walked)
    assert fast == walked
