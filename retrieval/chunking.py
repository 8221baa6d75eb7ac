"""Cut documents into sections, chunks and sentences, each unit with exact character offsets.

Sections come from the loader (headings, or PDF pages), sentences from a rule-based splitter run inside each
section, and chunks pack whole sentences of one section up to a token budget, with a sentence-aligned
overlap. A sentence longer than the budget is cut into token windows, so every unit fits. The loader's rows
(table rows, form lines) are sentence-grain units of their own: the splitter cuts at their edges and never
inside them, and chunks pack them like sentences.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import accumulate, pairwise

from retrieval.config import ChunkingConfig
from retrieval.ids import unit_id
from retrieval.models import ChunkedDocument, Document, Span, Unit, UnitKind
from retrieval.tokens import count_tokens, encoder

_Offsets = tuple[int, int]
_OPENERS = "\"'“‘«([{"
_CLOSERS = "\"'”’»)]}"
_CJK_TERMINATORS = "。！？"
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’»)\]}]*(?=\s)|[。！？]+[\"'”’」』)\]]*")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•][ \t]|\d{1,3}[.)][ \t])", re.MULTILINE)
_HEADING_LINE = re.compile(r"^[ \t]*#{1,6}(?:[ \t][^\n]*)?$", re.MULTILINE)
_NON_SPACE = re.compile(r"\S")
_DOTTED_ABBREVIATION = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")
_ABBREVIATIONS = frozenset(
    {
        "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Sr", "Jr", "Mt", "Ft", "Ave", "Gen", "Col", "Capt", "Lt",
        "Sgt", "Rev", "Hon", "Gov", "Sen", "Rep", "Pres", "No", "Nos", "Vol", "Fig", "Figs", "Eq", "Ch",
        "Sec", "p", "pp", "vs", "etc", "al", "approx", "cf", "ca", "Inc", "Ltd", "Co", "Corp", "Bros",
        "Jan", "Feb", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    }
)  # fmt: skip
_MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    tokens: int


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans (absolute offsets into text) inside text[start:end], outer whitespace excluded."""
    stop = len(text) if end is None else end
    if not 0 <= start <= stop <= len(text):
        raise ValueError(f"span [{start}, {end}) is not inside a text of {len(text)} characters")
    cuts = {start, stop}
    cuts.update(match.start() for match in _BLANK_LINE.finditer(text, start, stop))
    cuts.update(match.start() for match in _LIST_ITEM.finditer(text, start, stop))
    for match in _HEADING_LINE.finditer(text, start, stop):
        cuts.update(match.span())
    cuts.update(
        match.end()
        for match in _SENTENCE_END.finditer(text, start, stop)
        if _ends_sentence(text, match, start, stop)
    )
    spans = (_trim(text, left, right) for left, right in pairwise(sorted(cuts)))
    return [(left, right) for left, right in spans if left < right]


def _ends_sentence(text: str, mark: re.Match[str], start: int, stop: int) -> bool:
    punctuation = mark.group()
    if punctuation[0] in _CJK_TERMINATORS:
        return True
    next_word = _NON_SPACE.search(text, mark.end(), stop)
    if next_word is None:
        return False
    follower = next_word.group()
    if not (follower.isupper() or follower.isdigit() or follower in _OPENERS):
        return False
    return punctuation.rstrip(_CLOSERS) != "." or not _is_abbreviation(
        _word_before(text, start, mark.start())
    )


def _word_before(text: str, start: int, position: int) -> str:
    begin = position
    while begin > start and not text[begin - 1].isspace():
        begin -= 1
    return text[begin:position].lstrip(_OPENERS)


def _is_abbreviation(word: str) -> bool:
    is_initial = len(word) == 1 and word.isupper()
    return is_initial or word in _ABBREVIATIONS or _DOTTED_ABBREVIATION.fullmatch(word) is not None


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    left_trimmed = piece.lstrip()
    new_start = start + len(piece) - len(left_trimmed)
    return new_start, new_start + len(left_trimmed.rstrip())


def chunk_document(doc: Document, config: ChunkingConfig) -> ChunkedDocument:
    """Cut a document into sections, chunks and sentences, every unit with exact offsets."""
    sections: list[Unit] = []
    chunks: list[Unit] = []
    sentences: list[Unit] = []
    rows = _row_spans(doc)
    for span in _section_spans(doc):
        page = span.page if span.page is not None else doc.page_at(span.start)
        section = _unit(doc, "section", len(sections), (span.start, span.end), path=span.label, page=page)
        sections.append(section)
        inside = [row for row in rows if span.start <= row.start and row.end <= span.end]
        sentence_spans, chunk_spans = _cut_section(doc.text, span.start, span.end, config, rows=inside)
        sentences += [
            _as_row(_child(doc, "sentence", len(sentences) + i, s, section), inside)
            for i, s in enumerate(sentence_spans)
        ]
        chunks += [_child(doc, "chunk", len(chunks) + i, c, section) for i, c in enumerate(chunk_spans)]
    return ChunkedDocument(document=doc, sections=sections, chunks=chunks, sentences=sentences)


def _section_spans(doc: Document) -> list[Span]:
    """Disjoint, trimmed, non-blank sections in text order; uncovered text becomes untitled sections."""
    length = len(doc.text)
    spans: list[Span] = []
    cursor = 0
    for declared in sorted(doc.sections or doc.pages, key=lambda span: (span.start, span.end)):
        start = min(max(declared.start, cursor), length)
        end = min(declared.end, length)
        if start > cursor:
            spans.append(Span(cursor, start))
        if end > start:
            spans.append(Span(start, end, declared.label, declared.page))
        cursor = max(cursor, end)
    if cursor < length:
        spans.append(Span(cursor, length))
    trimmed = ((_trim(doc.text, span.start, span.end), span) for span in spans)
    return [Span(start, end, span.label, span.page) for (start, end), span in trimmed if start < end]


def _row_spans(doc: Document) -> list[Span]:
    """The document's rows trimmed, non-blank, disjoint and in text order; a row overlapping an earlier
    one keeps only what follows it."""
    rows: list[Span] = []
    cursor = 0
    for declared in sorted(doc.rows, key=lambda span: (span.start, span.end)):
        start, end = _trim(doc.text, max(declared.start, cursor), min(declared.end, len(doc.text)))
        if start < end:
            rows.append(Span(start, end, declared.label, declared.page))
            cursor = end
    return rows


def _split_around_rows(text: str, start: int, end: int, rows: list[Span]) -> list[_Offsets]:
    """Sentence spans of text[start:end] where each row is one span and no sentence crosses a row's edge."""
    if not rows:
        return split_sentences(text, start, end)
    spans: list[_Offsets] = []
    cursor = start
    for row in rows:
        spans += split_sentences(text, cursor, row.start)
        spans.append((row.start, row.end))
        cursor = row.end
    return spans + split_sentences(text, cursor, end)


def _as_row(unit: Unit, rows: list[Span]) -> Unit:
    """The unit marked as a row, with its headers, when it lies inside one of ``rows`` (sorted, disjoint)."""
    at = bisect_right([row.start for row in rows], unit.start) - 1
    if at < 0 or unit.end > rows[at].end:
        return unit
    return replace(unit, role="row", headers=rows[at].label)


def _unit(
    doc: Document,
    kind: UnitKind,
    ordinal: int,
    span: _Offsets,
    *,
    path: tuple[str, ...],
    page: int | None,
    parent_id: str | None = None,
) -> Unit:
    start, end = span
    return Unit(
        unit_id=unit_id(doc.doc_id, kind, ordinal),
        doc_id=doc.doc_id,
        kind=kind,
        text=doc.text[start:end],
        start=start,
        end=end,
        section_path=path,
        page=page,
        parent_id=parent_id,
        ordinal=ordinal,
    )


def _child(doc: Document, kind: UnitKind, ordinal: int, span: _Offsets, section: Unit) -> Unit:
    page = doc.page_at(span[0])
    return _unit(
        doc,
        kind,
        ordinal,
        span,
        path=section.section_path,
        page=section.page if page is None else page,
        parent_id=section.unit_id,
    )


def _cut_section(
    text: str, start: int, end: int, config: ChunkingConfig, *, rows: list[Span]
) -> tuple[list[_Offsets], list[_Offsets]]:
    """Sentence spans (rows among them) and chunk spans of one section."""
    sentence_spans = _split_around_rows(text, start, end, rows)
    if _fits_one_chunk(text, (start, end), config.chunk_tokens):
        return sentence_spans, [(start, end)]
    sentences: list[_Offsets] = []
    chunks: list[_Offsets] = []
    pending: list[_Sentence] = []
    for sentence_start, sentence_end in sentence_spans:
        tokens = encoder().encode_ordinary(text[sentence_start:sentence_end])
        if len(tokens) <= config.chunk_tokens:
            pending.append(_Sentence(sentence_start, sentence_end, len(tokens)))
            sentences.append((sentence_start, sentence_end))
            continue
        chunks.extend(_pack(text, pending, config))
        pending = []
        pieces, windows = _cut_long_sentence(text, (sentence_start, sentence_end), tokens, config)
        sentences.extend(pieces)
        chunks.extend(windows)
    chunks.extend(_pack(text, pending, config))
    return sentences, chunks


def _fits_one_chunk(text: str, section: _Offsets, size: int) -> bool:
    # Most sections of short-paragraph corpora fit whole: one encode replaces one per sentence plus packing.
    # Text averages well under _MAX_CHARS_PER_TOKEN characters a token, so a longer section almost never
    # fits and encoding it whole would be wasted work.
    start, end = section
    return end - start <= _MAX_CHARS_PER_TOKEN * size and count_tokens(text[start:end]) <= size


def _cut_long_sentence(
    text: str, span: _Offsets, tokens: list[int], config: ChunkingConfig
) -> tuple[list[_Offsets], list[_Offsets]]:
    """Pieces (the first of chunk_tokens, the others of chunk_tokens - overlap) and one window per piece.

    Each window is its piece preceded by up to overlap_tokens of the previous piece, so windows hold at most
    chunk_tokens and every piece lies inside its window.
    """
    _, offsets = encoder().decode_with_offsets(tokens)
    bounds = [span[0] + offset for offset in offsets] + [span[1]]
    size, overlap = config.chunk_tokens, config.overlap_tokens
    pieces: list[_Offsets] = []
    windows: list[_Offsets] = []
    first = 0
    while first < len(tokens):
        last = min(first + (size if first == 0 else size - overlap), len(tokens))
        last, piece = _fit_piece(text, bounds, (first, last), size)
        if piece[0] < piece[1]:
            pieces.append(piece)
            windows.append(
                _fit_window(text, [bounds[k] for k in range(max(0, first - overlap), first)], piece, size)
            )
        first = last
    return pieces, windows


def _fit_piece(text: str, bounds: list[int], tokens: _Offsets, size: int) -> tuple[int, _Offsets]:
    """Move the piece's last token back until its text, encoded on its own, holds <= size tokens."""
    first, last = tokens
    # Encoded out of context the first word may split into more tokens than it had inside the sentence.
    while True:
        piece = _trim(text, bounds[first], bounds[last])
        if last - first == 1 or count_tokens(text[piece[0] : piece[1]]) <= size:
            return last, piece
        last -= 1


def _fit_window(text: str, starts: list[int], piece: _Offsets, size: int) -> _Offsets:
    """The widest window ending with ``piece`` and starting at one of ``starts`` that holds <= size tokens."""
    for start in starts:
        window = _trim(text, start, piece[1])
        if count_tokens(text[window[0] : window[1]]) <= size:
            return window
    return piece


def _pack(text: str, sentences: list[_Sentence], config: ChunkingConfig) -> list[_Offsets]:
    """Greedy chunks of whole sentences, each next chunk opening with a sentence-aligned overlap."""
    if not sentences:
        return []
    gaps = [0, *(_gap_tokens(text[before.end : after.start]) for before, after in pairwise(sentences))]
    prefix = [0, *accumulate(gap + sentence.tokens for gap, sentence in zip(gaps, sentences, strict=True))]

    def estimate(first: int, end: int) -> int:
        return prefix[end] - prefix[first] - gaps[first]

    size, count = config.chunk_tokens, len(sentences)
    chunks: list[_Offsets] = []
    first = fresh = 0
    while fresh < count:
        end = fresh + 1
        while end < count and estimate(first, end + 1) <= size:
            end += 1
        first, end = _fit_exact(text, sentences, (first, fresh, end), size)
        chunks.append((sentences[first].start, sentences[end - 1].end))
        fresh, first = end, _overlap_start(estimate, (first, end, count), config)
    return chunks


def _gap_tokens(gap: str) -> int:
    # A single space is absorbed by the next word's token (" The"), so it costs nothing.
    return 0 if gap == " " else count_tokens(gap)


def _fit_exact(text: str, sentences: list[_Sentence], bounds: tuple[int, int, int], size: int) -> _Offsets:
    """Shrink [first, end) until its exact token count fits, keeping ``fresh``, the first new sentence."""
    first, fresh, end = bounds
    while end - first > 1:
        if count_tokens(text[sentences[first].start : sentences[end - 1].end]) <= size:
            break
        if end - 1 > fresh:
            end -= 1
        else:
            first += 1
    return first, end


def _overlap_start(
    estimate: Callable[[int, int], int], bounds: tuple[int, int, int], config: ChunkingConfig
) -> int:
    """First sentence of the next chunk: trailing sentences of [first, end) that fit the overlap budget.

    The overlap never takes the whole previous chunk and always leaves room for the next new sentence.
    """
    first, end, count = bounds
    start = end
    while (
        start - 1 > first
        and estimate(start - 1, end) <= config.overlap_tokens
        and (end == count or estimate(start - 1, end + 1) <= config.chunk_tokens)
    ):
        start -= 1
    return start
