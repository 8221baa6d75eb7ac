"""Cut documents into sections, chunks and sentences, each unit with exact character offsets.

Sections come from the loader (headings, or PDF pages), sentences from a rule-based splitter run inside each
section, and chunks pack whole sentences of one section up to a token budget, with a sentence-aligned
overlap. A sentence longer than the budget is cut into token windows, so every unit fits. The loader's rows
(table rows, form lines) are sentence-grain units of their own: the splitter cuts at their edges and never
inside them, and chunks pack them like sentences.

The budget has a second bound when the caller knows the embedding model's window: a chunk also holds no more
than the model reads in one pass, so its vector covers all of it and every sentence inside can be pooled from
that pass (see :func:`retrieval.ingest.embedding_text`).
"""

from __future__ import annotations

import functools
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
ChunkFits = Callable[[tuple[str, ...], str], bool]
"""Whether the embedding model reads a chunk of the section with this path and this text whole."""
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
class _Budget:
    """What one chunk of a section may hold: ``tokens`` cl100k tokens, and no more than the model reads."""

    tokens: int
    overlap: int
    reads_whole: Callable[[str], bool]

    def holds(self, text: str) -> bool:
        """Whether ``text`` fits in one chunk."""
        return count_tokens(text) <= self.tokens and self.reads_whole(text)


def _always(_: str) -> bool:
    return True


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


def chunk_document(
    doc: Document, config: ChunkingConfig, *, fits: ChunkFits | None = None
) -> ChunkedDocument:
    """Cut a document into sections, chunks and sentences, every unit with exact offsets; with ``fits``, no
    chunk holds more than the embedding model reads in one pass."""
    sections: list[Unit] = []
    chunks: list[Unit] = []
    sentences: list[Unit] = []
    rows = _row_spans(doc)
    for span in _section_spans(doc):
        page = span.page if span.page is not None else doc.page_at(span.start)
        section = _unit(doc, "section", len(sections), (span.start, span.end), path=span.label, page=page)
        sections.append(section)
        inside = [row for row in rows if span.start <= row.start and row.end <= span.end]
        reads_whole = _always if fits is None else functools.partial(fits, span.label)
        budget = _Budget(config.chunk_tokens, config.overlap_tokens, reads_whole)
        sentence_spans, chunk_spans = _cut_section(doc.text, span.start, span.end, budget, rows=inside)
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
    text: str, start: int, end: int, budget: _Budget, *, rows: list[Span]
) -> tuple[list[_Offsets], list[_Offsets]]:
    """Sentence spans (rows among them) and chunk spans of one section."""
    sentence_spans = _split_around_rows(text, start, end, rows)
    if _fits_one_chunk(text, (start, end), budget):
        return sentence_spans, [(start, end)]
    sentences: list[_Offsets] = []
    chunks: list[_Offsets] = []
    pending: list[_Sentence] = []
    for sentence_start, sentence_end in sentence_spans:
        tokens = encoder().encode_ordinary(text[sentence_start:sentence_end])
        if len(tokens) <= budget.tokens and budget.reads_whole(text[sentence_start:sentence_end]):
            pending.append(_Sentence(sentence_start, sentence_end, len(tokens)))
            sentences.append((sentence_start, sentence_end))
            continue
        chunks.extend(_pack(text, pending, budget))
        pending = []
        pieces, windows = _cut_long_sentence(text, (sentence_start, sentence_end), tokens, budget)
        sentences.extend(pieces)
        chunks.extend(windows)
    chunks.extend(_pack(text, pending, budget))
    return sentences, chunks


def _fits_one_chunk(text: str, section: _Offsets, budget: _Budget) -> bool:
    # Most sections of short-paragraph corpora fit whole: one encode replaces one per sentence plus packing.
    # Text averages well under _MAX_CHARS_PER_TOKEN characters a token, so a longer section almost never
    # fits and encoding it whole would be wasted work.
    start, end = section
    return end - start <= _MAX_CHARS_PER_TOKEN * budget.tokens and budget.holds(text[start:end])


def _cut_long_sentence(
    text: str, span: _Offsets, tokens: list[int], budget: _Budget
) -> tuple[list[_Offsets], list[_Offsets]]:
    """Pieces (the first of up to ``budget.tokens``, the others of up to ``budget.tokens - budget.overlap``)
    and one window per piece.

    Each window is its piece preceded by up to ``budget.overlap`` tokens of the previous piece, so windows
    fit the budget and every piece lies inside its window.
    """
    _, offsets = encoder().decode_with_offsets(tokens)
    bounds = [span[0] + offset for offset in offsets] + [span[1]]
    size, overlap = budget.tokens, budget.overlap
    pieces: list[_Offsets] = []
    windows: list[_Offsets] = []
    first = 0
    while first < len(tokens):
        last = min(first + (size if first == 0 else size - overlap), len(tokens))
        last, piece = _fit_piece(text, bounds, (first, last), budget)
        if piece[0] < piece[1]:
            pieces.append(piece)
            windows.append(
                _fit_window(text, [bounds[k] for k in range(max(0, first - overlap), first)], piece, budget)
            )
        first = last
    return pieces, windows


def _fit_piece(text: str, bounds: list[int], tokens: _Offsets, budget: _Budget) -> tuple[int, _Offsets]:
    """The piece's last token, moved back until the piece fits the budget, and the piece's span.

    Encoded out of context the first word may split into more tokens than it had inside the sentence, and
    the model's word pieces may outnumber the tokens: the last token that fits is found by bisection.
    """
    first, last = tokens

    def piece(end: int) -> _Offsets:
        return _trim(text, bounds[first], bounds[end])

    if budget.holds(_slice(text, piece(last))):
        return last, piece(last)
    low, high = first + 1, last - 1
    while low < high:
        middle = (low + high + 1) // 2
        if budget.holds(_slice(text, piece(middle))):
            low = middle
        else:
            high = middle - 1
    return low, piece(low)


def _slice(text: str, span: _Offsets) -> str:
    return text[span[0] : span[1]]


def _fit_window(text: str, starts: list[int], piece: _Offsets, budget: _Budget) -> _Offsets:
    """The widest window ending with ``piece`` and starting at one of ``starts`` that fits the budget."""
    for start in starts:
        window = _trim(text, start, piece[1])
        if budget.holds(_slice(text, window)):
            return window
    return piece


def _pack(text: str, sentences: list[_Sentence], budget: _Budget) -> list[_Offsets]:
    """Greedy chunks of whole sentences, each next chunk opening with a sentence-aligned overlap."""
    if not sentences:
        return []
    gaps = [0, *(_gap_tokens(text[before.end : after.start]) for before, after in pairwise(sentences))]
    prefix = [0, *accumulate(gap + sentence.tokens for gap, sentence in zip(gaps, sentences, strict=True))]

    def estimate(first: int, end: int) -> int:
        return prefix[end] - prefix[first] - gaps[first]

    count = len(sentences)
    chunks: list[_Offsets] = []
    first = fresh = 0
    while fresh < count:
        end = fresh + 1
        while end < count and estimate(first, end + 1) <= budget.tokens:
            end += 1
        first, end = _fit_exact(text, sentences, (first, fresh, end), budget)
        chunks.append((sentences[first].start, sentences[end - 1].end))
        fresh, first = end, _overlap_start(estimate, (first, end, count), budget)
    return chunks


def _gap_tokens(gap: str) -> int:
    # A single space is absorbed by the next word's token (" The"), so it costs nothing.
    return 0 if gap == " " else count_tokens(gap)


def _fit_exact(
    text: str, sentences: list[_Sentence], bounds: tuple[int, int, int], budget: _Budget
) -> _Offsets:
    """Shrink [first, end) until it fits the budget exactly, keeping ``fresh``, the first new sentence."""
    first, fresh, end = bounds
    while end - first > 1:
        if budget.holds(text[sentences[first].start : sentences[end - 1].end]):
            break
        if end - 1 > fresh:
            end -= 1
        else:
            first += 1
    return first, end


def _overlap_start(estimate: Callable[[int, int], int], bounds: tuple[int, int, int], budget: _Budget) -> int:
    """First sentence of the next chunk: trailing sentences of [first, end) that fit the overlap budget.

    The overlap never takes the whole previous chunk and always leaves room for the next new sentence.
    """
    first, end, count = bounds
    start = end
    while (
        start - 1 > first
        and estimate(start - 1, end) <= budget.overlap
        and (end == count or estimate(start - 1, end + 1) <= budget.tokens)
    ):
        start -= 1
    return start
