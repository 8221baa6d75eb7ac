"""Read a PDF into a Document: page texts joined by blank lines, page spans, table rows and form lines from
the page geometry, and a note for each page that is an image with no text layer."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import LoaderError
from retrieval.models import Document, Span
from retrieval.tables import TextLine, find_rows, text_lines
from retrieval.titles import choose_title, first_line_title

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_PAGE_BREAK = "\n\n"
_COLUMN_GAP = 2.0
"""A space this many times the page's typical character width apart, and _OUTLIER_GAP times the line's
typical space, stands for a column gap, not a word gap: justified prose widens all its spaces alike."""
_OUTLIER_GAP = 2.5


@dataclass(frozen=True)
class _Page:
    text: str
    lines: list[TextLine]
    """Lines with offsets into ``text`` and their column gaps."""
    scanned: bool
    """No text but something drawn: an image of a page."""


def load_pdf(path: Path, data: bytes, doc_id: str) -> list[Document]:
    """One PDF to its document; fails when no page has a text layer."""
    pdf = _open_pdf(path, data)
    try:
        pages = _read_pages(path, pdf)
        metadata_title = " ".join(pdf.get_metadata_dict(skip_empty=True).get("Title", "").split())
    finally:
        pdf.close()
    empty = sum(1 for page in pages if not page.text.strip())
    if empty == len(pages):
        reason = (
            f"PDF has no extractable text ({_pages(empty)} without a text layer; "
            "scanned images? OCR is not supported)"
        )
        raise LoaderError(str(path), reason)
    spans: list[Span] = []
    rows: list[Span] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        spans.append(Span(start=offset, end=offset + len(page.text), label=(f"Page {number}",), page=number))
        shifted = [TextLine(start=offset + line.start, text=line.text, gaps=line.gaps) for line in page.lines]
        rows.extend(find_rows(shifted, page=number))
        offset += len(page.text) + len(_PAGE_BREAK)
    text = _PAGE_BREAK.join(page.text for page in pages)
    notes = [
        f"page {number} has no text layer (scanned image? OCR is not supported)"
        for number, page in enumerate(pages, start=1)
        if page.scanned
    ]
    title = choose_title([metadata_title, first_line_title(text)], fallback=path.stem)
    document = Document(
        doc_id=doc_id,
        title=title,
        text=text,
        source=str(path),
        sections=list(spans),
        pages=spans,
        rows=rows,
        notes=notes,
    )
    return [document]


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"


def _open_pdf(path: Path, data: bytes) -> pdfium.PdfDocument:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium.raw.FPDF_ERR_PASSWORD:
            raise LoaderError(str(path), "encrypted PDF (password required)") from exc
        raise LoaderError(str(path), f"corrupt or unreadable PDF ({str(exc).rstrip('.')})") from exc


def _read_pages(path: Path, pdf: pdfium.PdfDocument) -> list[_Page]:
    import pypdfium2 as pdfium

    pages: list[_Page] = []
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            raw = textpage.get_text_range()
            text = raw.replace("\r\n", "\n").replace("\r", "\n")
            lines = _lines_with_gaps(textpage, raw, text)
            scanned = not text.strip() and pdfium.raw.FPDFPage_CountObjects(page.raw) > 0
            pages.append(_Page(text=text, lines=lines, scanned=scanned))
            textpage.close()
            page.close()
    except pdfium.PdfiumError as exc:
        raise LoaderError(str(path), f"corrupt or unreadable PDF ({str(exc).rstrip('.')})") from exc
    return pages


def _raw_offsets(raw: str) -> list[int]:
    """For each character of the text with line breaks made "\\n", its index in pdfium's raw text."""
    offsets: list[int] = []
    base = 0
    for part in raw.split("\r\n"):
        offsets.extend(range(base, base + len(part) + 1))  # the part, then the "\n" its "\r\n" became
        base += len(part) + 2
    offsets.pop()  # no line break after the last part
    return offsets


class _CharBoxes:
    """Horizontal edges of a text page's character boxes, read straight from pdfium into reused buffers:
    a page asks for two boxes per space, and the wrapper's per-call allocations were most of the cost."""

    def __init__(self, textpage: pdfium.PdfTextPage) -> None:
        from ctypes import c_double

        import pypdfium2.raw as pdfium_c

        self._page = textpage.raw
        self._get_box = pdfium_c.FPDFText_GetCharBox
        self._edges = (c_double(), c_double(), c_double(), c_double())

    def horizontal(self, index: int) -> tuple[float, float]:
        """Left and right edges of the character at ``index`` (as ``PdfTextPage.get_charbox``)."""
        left, right, bottom, top = self._edges
        if not self._get_box(self._page, index, left, right, bottom, top):
            import pypdfium2 as pdfium

            raise pdfium.PdfiumError("Failed to get charbox.")
        return left.value, right.value


def _lines_with_gaps(textpage: pdfium.PdfTextPage, raw: str, text: str) -> list[TextLine]:
    """The page's lines, each with the spaces that are wider than word gaps."""
    lines = text_lines(text)
    if textpage.count_chars() != len(raw):  # characters outside the BMP: boxes would not line up
        return lines
    to_raw = _raw_offsets(raw)
    boxes = _CharBoxes(textpage)
    spans: dict[int, list[tuple[int, float]]] = {}
    widths: list[float] = []
    for number, line in enumerate(lines):
        last = len(line.text) - 1
        position = line.text.find(" ", 1)
        while 0 < position < last:
            at = to_raw[line.start + position]
            left, right = boxes.horizontal(at - 1)
            following, _ = boxes.horizontal(at + 1)
            if right > left:
                widths.append(right - left)
            spans.setdefault(number, []).append((position, following - right))
            position = line.text.find(" ", position + 1)
    if not widths:
        return lines
    threshold = _COLUMN_GAP * statistics.median(widths)
    return [
        TextLine(start=line.start, text=line.text, gaps=_column_gaps(spans.get(number, []), threshold))
        for number, line in enumerate(lines)
    ]


def _column_gaps(spaces: list[tuple[int, float]], threshold: float) -> tuple[int, ...]:
    """Positions of the spaces wider than ``threshold`` and clearly wider than the line's narrowest space,
    when that one is a word space."""
    narrowest = min((gap for _, gap in spaces), default=0.0)
    limit = max(threshold, _OUTLIER_GAP * narrowest) if narrowest <= threshold else threshold
    return tuple(position for position, gap in spaces if gap > limit)
