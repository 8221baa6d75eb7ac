"""Rows, titles and notes as the loaders produce them from real PDF, HTML, DOCX and Markdown files."""

from __future__ import annotations

import json
from pathlib import Path

import docx
import pytest
from typer.testing import CliRunner

from agents.cli import app
from retrieval.errors import LoaderError
from retrieval.loaders import load_file
from retrieval.models import Document

# A page is a list of (x, y, text) runs in points, or None for a page holding only an image (a scan).
PdfPage = list[tuple[float, float, str]] | None
_IMAGE = (
    b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
    b"/Length 1 >>"
)


def make_pdf(pages: list[PdfPage], *, title: str | None = None) -> bytes:
    """A PDF with text runs placed at given positions (Helvetica 10 pt), so columns have real gaps."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: _IMAGE + b"\nstream\n\x80\nendstream",
    }
    kids = []
    for index, runs in enumerate(pages):
        page, contents = 5 + 2 * index, 6 + 2 * index
        kids.append(page)
        if runs is None:
            ops = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
        else:
            shown = [
                b"BT /F1 10 Tf %g %g Td (%s) Tj ET"
                % (x, y, text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1"))
                for x, y, text in runs
            ]
            ops = b"\n".join(shown)
        objects[page] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> /Contents %d 0 R >>" % contents
        )
        objects[contents] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    trailer = b"/Root 1 0 R"
    if title is not None:
        number = max(objects) + 1
        objects[number] = b"<< /Title (%s) >>" % title.encode("latin-1")
        trailer += b" /Info %d 0 R" % number
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(
        b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n" for n in range(1, size)
    )
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, xref_at)
    return bytes(out)


def prose(y: float, *lines: str) -> list[tuple[float, float, str]]:
    return [(72, y - 14 * index, line) for index, line in enumerate(lines)]


FORM_PAGE: PdfPage = [
    (72, 740, "Aviation Accident Final Report"),
    (72, 720, "Airframe Total Time:"),
    (250, 720, "3861 Hours at time of"),
    (250, 706, "accident"),
    (72, 692, "Engine Manufacturer:"),
    (250, 692, "Lycoming"),
    (330, 692, "Rated Power:"),
    (450, 692, "180 hp"),
    *prose(
        650,
        "The pilot was attempting to land at his private airstrip. While on final approach for",
        "the turf strip, the airplane contacted trees, then utility wires, and came to rest",
        "upright. The reported weather about the time of the accident included calm winds.",
    ),
]
TABLE_PAGE: PdfPage = [
    (72, 740, "Adverse events in earlier trials"),
    *[
        (x, y, cell)
        for y, row in [
            (720, ["System", "Grade 3", "Grade 4"]),
            (706, ["Chills", "70 (13%)", "0 (0%)"]),
            (692, ["Fever", "29 (6%)", "5 (1%)"]),
            (678, ["Hypotension", "205 (39%)", "15 (3%)"]),
        ]
        for x, cell in zip([72, 250, 400], row, strict=True)
    ],
]


def load(path: Path) -> Document:
    [document] = load_file(path, doc_id=path.name, max_bytes=10_000_000)
    return document


def row_texts(document: Document) -> list[str]:
    return [document.text[row.start : row.end] for row in document.rows]


def assert_rows_valid(document: Document) -> None:
    rows = document.rows
    assert all(a.end <= b.start for a, b in zip(rows, rows[1:], strict=False))
    for row in rows:
        page = next(p for p in document.pages if p.page == row.page) if document.pages else None
        assert page is None or page.start <= row.start < row.end <= page.end


@pytest.fixture
def report_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "0000320193-23-000077.pdf"
    path.write_bytes(make_pdf([FORM_PAGE, None, TABLE_PAGE], title="0000320193-23-000077"))
    return path


def test_pdf_form_fields_and_table_rows_are_rows_and_prose_is_not(report_pdf: Path) -> None:
    document = load(report_pdf)
    texts = [" ".join(text.split()) for text in row_texts(document)]
    assert texts == [
        "Airframe Total Time: 3861 Hours at time of accident",
        "Engine Manufacturer: Lycoming Rated Power: 180 hp",
        "System Grade 3 Grade 4",
        "Chills 70 (13%) 0 (0%)",
        "Fever 29 (6%) 5 (1%)",
        "Hypotension 205 (39%) 15 (3%)",
    ]
    assert [row.page for row in document.rows] == [1, 1, 3, 3, 3, 3]
    assert [row.label for row in document.rows] == [(), (), (), *[("System", "Grade 3", "Grade 4")] * 3]
    assert_rows_valid(document)


def test_pdf_rows_leave_the_text_as_it_was(report_pdf: Path) -> None:
    document = load(report_pdf)
    assert document.text.startswith(
        "Aviation Accident Final Report\nAirframe Total Time: 3861 Hours at time of"
    )
    assert [(p.start, p.end) for p in document.sections] == [(p.start, p.end) for p in document.pages]
    assert document.text[document.pages[1].start : document.pages[1].end] == ""


def test_pdf_scanned_page_is_a_note_and_identifier_title_gives_way(report_pdf: Path) -> None:
    document = load(report_pdf)
    assert document.notes == ["page 2 has no text layer (scanned image? OCR is not supported)"]
    assert document.title == "Aviation Accident Final Report"


def test_pdf_of_scans_only_fails_counting_its_pages(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([None, None, None]))
    with pytest.raises(LoaderError) as caught:
        load(path)
    assert caught.value.reason == (
        "PDF has no extractable text (3 pages without a text layer; scanned images? OCR is not supported)"
    )


def test_pdf_producer_title_gives_way_and_a_blank_page_is_no_scan(tmp_path: Path) -> None:
    path = tmp_path / "protocol.pdf"
    path.write_bytes(
        make_pdf(
            [[], [(72, 700, "Page 1 of 2"), (72, 680, "Treatment of Oral Disease")]],
            title="Microsoft Word - null.doc",
        )
    )
    document = load(path)
    assert document.title == "Treatment of Oral Disease"
    assert document.notes == []


def test_html_table_rows_have_exact_offsets_and_th_headers(tmp_path: Path) -> None:
    path = tmp_path / "sales.html"
    path.write_text(
        "<html><head><title>0000320193-23-000077</title></head><body><h1>Apple sales</h1>"
        "<p>Net sales rose.</p><table><tr><th>Item</th><th>Three Months Ended July 1, 2023</th></tr>"
        "<tr><td>Total net sales</td><td>$81,797</td></tr><tr><td>iPhone</td><td><p>$39,669</p></td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )
    document = load(path)
    assert document.title == "Apple sales"
    assert row_texts(document) == [
        "Item Three Months Ended July 1, 2023",
        "Total net sales $81,797",
        "iPhone\n\n$39,669",
    ]
    assert {row.label for row in document.rows} == {("Item", "Three Months Ended July 1, 2023")}
    assert document.text.endswith(
        "Net sales rose.\n\nItem Three Months Ended July 1, 2023\n\n"
        "Total net sales $81,797\n\niPhone\n\n$39,669"
    )


def test_html_table_without_th_has_rows_without_labels(tmp_path: Path) -> None:
    path = tmp_path / "plain.html"
    path.write_text(
        "<table><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table>", encoding="utf-8"
    )
    document = load(path)
    assert row_texts(document) == ["a 1", "b 2"]
    assert [row.label for row in document.rows] == [(), ()]


def test_docx_table_rows_are_labelled_with_the_first_row(tmp_path: Path) -> None:
    word = docx.Document()
    word.core_properties.title = "report_v2.docx"
    word.add_heading("Sales Summary", 1)
    word.add_paragraph("Figures follow.")
    table = word.add_table(rows=3, cols=2)
    for row, values in zip(
        table.rows, [("Quarter", "Net sales"), ("Q1", "$81,797"), ("Q2", "$94,836")], strict=True
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    path = tmp_path / "sales.docx"
    word.save(str(path))
    document = load(path)
    assert document.title == "Sales Summary"
    assert row_texts(document) == ["Quarter | Net sales", "Q1 | $81,797", "Q2 | $94,836"]
    assert [row.label for row in document.rows] == [(), ("Quarter", "Net sales"), ("Quarter", "Net sales")]
    assert (
        document.text
        == "Sales Summary\n\nFigures follow.\n\nQuarter | Net sales\n\nQ1 | $81,797\n\nQ2 | $94,836"
    )


def test_markdown_pipe_table_rows(tmp_path: Path) -> None:
    path = tmp_path / "sales.md"
    path.write_text(
        "# Sales\n\n| Quarter | Net sales |\n| --- | ---: |\n| Q1 | $81,797 |\n\nDone.\n", encoding="utf-8"
    )
    document = load(path)
    assert row_texts(document) == ["| Q1 | $81,797 |"]
    assert document.rows[0].label == ("Quarter", "Net sales")


def test_ingest_reports_scanned_pages_as_notes(report_pdf: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["ingest", str(report_pdf)])
    assert shown.exit_code == 0, shown.output
    assert (
        f"note: {report_pdf}: page 2 has no text layer (scanned image? OCR is not supported)" in shown.stdout
    )
    again = runner.invoke(app, ["ingest", "--json", str(report_pdf)])
    assert json.loads(again.stdout)["notes"] == [
        {"path": str(report_pdf), "note": "page 2 has no text layer (scanned image? OCR is not supported)"}
    ]
