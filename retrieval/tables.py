"""Find table rows and form lines ("Pilot age: 52") among the lines of a text.

Pure functions over lines with offsets: the loaders give each line its place in the document's text and,
for PDFs, where its column gaps are; the rows come back as spans with exact offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from retrieval.models import Span

_MAX_CONTINUATIONS = 2
"""Wrapped lines a row may run on over ("... Hours at time of" / "accident"); more is a paragraph."""
_MIN_HEADED_ROWS = 2
_NUMERIC_MAX_WORDS = 12
_NUMERIC_MIN_SHARE = 0.4
_PROSE_MIN_WORDS = 8

_FORM_LINE = re.compile(r"[A-Z0-9(][^\s:：]*(?: [^\s:：]+){0,5} ?(?::(?:\s|$)|：)")
_LIST_MARKER = re.compile(r"(?:\d{1,3}[.)]?|[a-zA-Z][.)]|[•●▪◦·*-])$")
_NUMERIC = re.compile(r"\d")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"”]$")
_PIPE_DELIMITER = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?")


@dataclass(frozen=True)
class TextLine:
    """One line of a text at ``start`` (its ``text`` without the line break), with the offsets within the
    line of the spaces that stand for column gaps, when the page's geometry tells them."""

    start: int
    text: str
    gaps: tuple[int, ...] = ()

    @property
    def end(self) -> int:
        """Offset just past the line's last character."""
        return self.start + len(self.text)


def text_lines(text: str, *, start: int = 0) -> list[TextLine]:
    """The lines of ``text`` with their offsets (``start`` added), "\\r" kept out of the line."""
    lines: list[TextLine] = []
    offset = start
    for raw in text.split("\n"):
        lines.append(TextLine(start=offset, text=raw.rstrip("\r")))
        offset += len(raw) + 1
    return lines


def cells(line: TextLine) -> tuple[str, ...]:
    """The line cut at its column gaps, each cell stripped."""
    bounds = [0, *(gap + 1 for gap in line.gaps), len(line.text) + 1]
    parts = (line.text[a : b - 1].strip() for a, b in zip(bounds, bounds[1:], strict=False))
    return tuple(part for part in parts if part)


def _words(text: str) -> list[str]:
    return text.split()


def _has_columns(line: TextLine) -> bool:
    """True when the line has a column gap other than the one after a leading list marker ("1.  Smith")."""
    leads = (line.text[:gap].strip() for gap in line.gaps)
    return any(lead and not _LIST_MARKER.match(lead) for lead in leads)


def _is_form_line(text: str) -> bool:
    return _FORM_LINE.match(text) is not None


def _is_numeric_row(text: str) -> bool:
    """A short line most of whose words are figures: "Hypotension 205 (39%) 15 (3%) 375 (71%)"."""
    words = _words(text)
    figures = sum(1 for word in words if _NUMERIC.search(word))
    return (
        figures >= 2
        and len(words) <= _NUMERIC_MAX_WORDS
        and figures / len(words) >= _NUMERIC_MIN_SHARE
        and not (text.endswith(".") and len(words) > figures + 1)
    )


def _unfinished_prose(line: TextLine) -> bool:
    """A wrapped line of a sentence that goes on to the next line."""
    text = line.text.strip()
    return len(_words(text)) >= _PROSE_MIN_WORDS and not _SENTENCE_END.search(text) and not line.gaps


def _starts_lowercase(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0].islower()


def _is_row_head(line: TextLine, previous: TextLine | None) -> bool:
    """Whether ``line`` starts a row; ``previous`` is the line before it unless that line is in a row."""
    text = line.text.strip()
    if not text or _starts_lowercase(text):
        return False
    if _has_columns(line):
        return True
    if previous is not None and _unfinished_prose(previous):
        return False  # the line goes on with the sentence of the line before
    return _is_form_line(text) or _is_numeric_row(text)


def _row_extent(lines: Sequence[TextLine], head: int) -> int | None:
    """Index of the last line of the row starting at ``head``: its lowercase continuations, if few."""
    last = head
    while last + 1 < len(lines) and _starts_lowercase(lines[last + 1].text) and not lines[last + 1].gaps:
        last += 1
        if last - head > _MAX_CONTINUATIONS:
            return None
    return last


def _header_cells(block: Sequence[TextLine]) -> tuple[str, ...]:
    """The first line's cells when it reads as a header: words in every cell ("Grade 3", not "205 (39%)"),
    and as many cells in most rows below."""
    head = cells(block[0])
    body = block[1:]
    if len(head) < 2 or len(body) < _MIN_HEADED_ROWS or not all(_LETTER.search(cell) for cell in head):
        return ()
    if any(_is_form_line(line.text.strip()) for line in block):
        return ()
    matching = sum(1 for line in body if len(cells(line)) == len(head))
    return head if matching * 2 > len(body) else ()


def find_rows(lines: Sequence[TextLine], *, page: int | None = None) -> list[Span]:
    """The table rows and form lines among ``lines``, each with its wrapped continuation lines.

    Consecutive column rows form a table; when its first row reads as a header, the rows below it are
    labelled with the header's cells.
    """
    rows: list[tuple[int, int]] = []
    index = 0
    while index < len(lines):
        in_row = bool(rows) and rows[-1][1] == index - 1
        previous = lines[index - 1] if index and not in_row else None
        last = _row_extent(lines, index) if _is_row_head(lines[index], previous) else None
        if last is None:
            index += 1
            continue
        rows.append((index, last))
        index = last + 1
    return [
        Span(start=_content_start(lines[first]), end=_content_end(lines[last]), label=label, page=page)
        for (first, last), label in zip(rows, _row_labels(lines, rows), strict=True)
    ]


def _content_start(line: TextLine) -> int:
    return line.start + len(line.text) - len(line.text.lstrip())


def _content_end(line: TextLine) -> int:
    return line.start + len(line.text.rstrip())


def _row_labels(lines: Sequence[TextLine], rows: Sequence[tuple[int, int]]) -> list[tuple[str, ...]]:
    labels: list[tuple[str, ...]] = [() for _ in rows]
    for block in _blocks(lines, rows):
        header = _header_cells([lines[rows[position][0]] for position in block])
        if header:
            for position in block[1:]:
                labels[position] = header
    return labels


def _blocks(lines: Sequence[TextLine], rows: Sequence[tuple[int, int]]) -> Iterator[list[int]]:
    """Runs of adjacent one-line column rows, as positions in ``rows``."""
    block: list[int] = []
    for position, (first, last) in enumerate(rows):
        columned = first == last and _has_columns(lines[first])
        if block and columned and rows[block[-1]][1] + 1 == first:
            block.append(position)
            continue
        if block:
            yield block
        block = [position] if columned else []
    if block:
        yield block


def pipe_table_rows(text: str) -> list[Span]:
    """Body lines of Markdown pipe tables, labelled with the header's cells."""
    lines = text_lines(text)
    rows: list[Span] = []
    index = 1
    while index < len(lines):
        header, delimiter = lines[index - 1].text, lines[index].text
        if "|" not in header or "|" not in delimiter or not _PIPE_DELIMITER.fullmatch(delimiter.strip()):
            index += 1
            continue
        label = _pipe_cells(header)
        index += 1
        while index < len(lines) and "|" in lines[index].text and lines[index].text.strip():
            line = lines[index]
            lead = len(line.text) - len(line.text.lstrip())
            rows.append(Span(start=line.start + lead, end=line.start + len(line.text.rstrip()), label=label))
            index += 1
    return rows


def _pipe_cells(line: str) -> tuple[str, ...]:
    stripped = line.strip()
    stripped = stripped[1:] if stripped.startswith("|") else stripped
    stripped = stripped[:-1] if stripped.endswith("|") else stripped
    return tuple(cell.strip() for cell in stripped.split("|"))
