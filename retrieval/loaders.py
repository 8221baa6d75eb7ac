"""Turn files on disk into Documents: plain text, Markdown, HTML, PDF, .docx and BEIR .jsonl corpora.

Every loader computes its spans on the final text and never changes the text afterwards, so
``document.text[span.start:span.end]`` is always the stretch the span names.
"""

from __future__ import annotations

import codecs
import fnmatch
import io
import json
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from retrieval.errors import LoaderError
from retrieval.models import Document, Span
from retrieval.tables import pipe_table_rows
from retrieval.titles import choose_title, first_line_title, short_title

# The parsers (bs4, python-docx, pypdfium2) are imported by the loaders that use them: listing or searching
# the index should not pay for them.
if TYPE_CHECKING:
    from bs4 import Tag
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

_BYTES_PER_MB = 1024 * 1024
_SNIFF_BYTES = 8192
_PARAGRAPH_BREAK = "\n\n"
_LINE_BREAK = "\n"

# A heading found in a text: (level, title, offset where its section starts).
_Heading = tuple[int, str, int]


def iter_files(
    paths: Sequence[Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    on_error: Callable[[LoaderError], None] | None = None,
) -> Iterator[Path]:
    """Files under ``paths``, folders walked recursively without hidden entries, sorted and glob-filtered.

    Linked folders are followed. A folder that cannot be listed, or a link leading back into a folder
    being walked, goes to ``on_error`` and the walk goes on (without ``on_error`` it is raised).
    """
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise LoaderError(str(path), "no such file or folder")
    report = on_error if on_error is not None else _raise
    seen: set[Path] = set()
    for path in paths:
        candidates = [(path, path.name)] if not _is_folder(path) else _walk_folder(path, report)
        for file, relative in candidates:
            resolved = resolved_location(file)
            if resolved not in seen and _wanted(relative, file.name, include=include, exclude=exclude):
                seen.add(resolved)
                yield file


def _raise(error: LoaderError) -> None:
    raise error


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. no permission to look: the loader names the reason when it reads the file
        return False


def resolved_location(path: Path) -> Path:
    """A file's absolute location with links resolved; a link loop keeps its own absolute path."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # a link loop (RuntimeError before Python 3.13, OSError after)
        return Path(os.path.abspath(path))


def corpus_document_id(corpus_id: str, record_id: str) -> str:
    """The id of one line of a .jsonl corpus: the corpus file's id and the line's ``_id``, so that two
    corpus files using the same ``_id`` stay two documents."""
    return f"{corpus_id}#{record_id}"


def _walk_folder(folder: Path, on_error: Callable[[LoaderError], None]) -> list[tuple[Path, str]]:
    """(file, path relative to ``folder``) for every visible file; a link back to an ancestor is an error."""
    found: list[tuple[Path, str]] = []
    pending: list[tuple[Path, frozenset[Path]]] = [(folder, frozenset({folder.resolve()}))]
    while pending:
        current, ancestors = pending.pop()
        try:
            with os.scandir(current) as entries:
                names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
        except OSError as exc:
            on_error(LoaderError(str(current), f"cannot read folder ({exc.strerror or exc}); skipped"))
            continue
        for name in names:
            path = current / name
            if not _is_folder(path):
                found.append((path, path.relative_to(folder).as_posix()))
                continue
            target = path.resolve()
            if target in ancestors:
                reason = f"symbolic link loop (leads back to {target}); skipped"
                on_error(LoaderError(str(path), reason))
            else:
                pending.append((path, ancestors | {target}))
    return sorted(found, key=lambda item: item[1])


def _wanted(relative: str, name: str, *, include: Sequence[str], exclude: Sequence[str]) -> bool:
    def matches(patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)

    return (not include or matches(include)) and not matches(exclude)


def load_file(path: Path, *, doc_id: str, max_bytes: int) -> list[Document]:
    """One file to its documents: many for a .jsonl corpus, one for every other format."""
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        kind = f"'{suffix}'" if suffix else "(no extension)"
        supported = ", ".join(sorted(_LOADERS))
        raise LoaderError(str(path), f"unsupported file type {kind} (supported: {supported})")
    data = _read_bytes(path, max_bytes=max_bytes)
    if not data.strip():
        raise LoaderError(str(path), "empty file (no text)")
    return loader(path, data, doc_id)


def _read_bytes(path: Path, *, max_bytes: int) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise LoaderError(str(path), "no such file or folder") from exc
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise LoaderError(str(path), "is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise LoaderError(str(path), "not a regular file")
    if info.st_size > max_bytes:
        size, limit = info.st_size / _BYTES_PER_MB, max_bytes / _BYTES_PER_MB
        reason = f"file is {size:.1f} MB, over the {limit:g} MB limit (raise max_file_mb)"
        raise LoaderError(str(path), reason)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read file ({exc.strerror or exc})") from exc


def _is_utf16(data: bytes) -> bool:
    return data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def _reject_binary(path: Path, data: bytes) -> None:
    if not _is_utf16(data) and b"\x00" in data[:_SNIFF_BYTES]:
        raise LoaderError(str(path), "binary file, not text")


def _decode_text(path: Path, data: bytes) -> str:
    if _is_utf16(data):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-16 text (undecodable bytes at offset {exc.start})"
            raise LoaderError(str(path), reason) from exc
    _reject_binary(path, data)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (undecodable bytes at offset {bom + exc.start})"
        raise LoaderError(str(path), reason) from exc


def _require_text(path: Path, text: str) -> str:
    if not text.strip():
        raise LoaderError(str(path), "empty file (no text)")
    return text


def _heading_sections(headings: Sequence[_Heading], text_length: int) -> list[Span]:
    """Spans from each heading to the next one, labelled with the path of enclosing headings."""
    sections: list[Span] = []
    open_headings: list[tuple[int, str]] = []
    for index, (level, title, start) in enumerate(headings):
        while open_headings and open_headings[-1][0] >= level:
            open_headings.pop()
        open_headings.append((level, title))
        end = headings[index + 1][2] if index + 1 < len(headings) else text_length
        sections.append(Span(start=start, end=end, label=tuple(name for _, name in open_headings)))
    return sections


def _heading_title(headings: Sequence[_Heading], *, top_level: int) -> str | None:
    for level, title, _ in headings:
        if level == top_level:
            return title
    return headings[0][1] if headings else None


def _load_txt(path: Path, data: bytes, doc_id: str) -> list[Document]:
    text = _require_text(path, _decode_text(path, data))
    first_line = next(line for line in text.splitlines() if line.strip())
    return [Document(doc_id=doc_id, title=short_title(first_line) or path.stem, text=text, source=str(path))]


_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")


def _markdown_headings(text: str) -> list[_Heading]:
    """ATX headings outside fenced code blocks, with the offset of each heading line."""
    headings: list[_Heading] = []
    fence: str | None = None
    offset = 0
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        line_start, offset = offset, offset + len(raw_line) + 1
        fence_match = _FENCE.match(line)
        if fence is not None:
            if (
                fence_match
                and fence_match[1][0] == fence[0]
                and len(fence_match[1]) >= len(fence)
                and not fence_match[2].strip()
            ):
                fence = None
            continue
        if fence_match and not (fence_match[1][0] == "`" and "`" in fence_match[2]):
            fence = fence_match[1]
            continue
        heading = _ATX_HEADING.match(line)
        title = _ATX_CLOSING.sub("", heading[2] or "").strip() if heading else ""
        if heading and title:
            headings.append((len(heading[1]), title, line_start))
    return headings


def _headed_document(
    path: Path, doc_id: str, *, title: str, text: str, headings: Sequence[_Heading], rows: Sequence[Span] = ()
) -> Document:
    """A document whose sections run from each heading to the next."""
    sections = _heading_sections(headings, len(text))
    return Document(
        doc_id=doc_id, title=title, text=text, source=str(path), sections=sections, rows=list(rows)
    )


def _load_markdown(path: Path, data: bytes, doc_id: str) -> list[Document]:
    text = _require_text(path, _decode_text(path, data))
    headings = _markdown_headings(text)
    title = _heading_title(headings, top_level=1) or path.stem
    rows = pipe_table_rows(text)
    return [_headed_document(path, doc_id, title=title, text=text, headings=headings, rows=rows)]


_HTML_DROPPED = frozenset(
    {"script", "style", "nav", "header", "footer", "noscript", "head", "template", "svg", "iframe", "object"}
)
_HTML_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "html",
        "li",
        "legend",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
    }
)
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}


_WHITESPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    return " ".join(text.split())


def _is_hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return (
        tag.name in _HTML_DROPPED
        or tag.has_attr("hidden")
        or str(tag.get("aria-hidden", "")).lower() == "true"
        or "display:none" in style
    )


def _visible_strings(tag: Tag) -> Iterator[str]:
    from bs4.element import PreformattedString

    for string in tag.find_all(string=True):
        if not isinstance(string, PreformattedString) and not any(_is_hidden(p) for p in string.parents):
            yield str(string)


class _HtmlText:
    """Visible text of an HTML tree as blocks separated by blank lines, and the headings among them."""

    def __init__(self) -> None:
        self.headings: list[_Heading] = []
        self.rows: list[Span] = []
        """One span per <tr>, labelled with its table's <th> header cells."""
        self._blocks: list[str] = []
        self._starts: list[int] = []
        self._length = 0
        self._inline: list[str] = []
        self._open_rows: list[tuple[int, int, tuple[str, ...]]] = []
        self._headers: dict[int, tuple[str, ...]] = {}

    @property
    def text(self) -> str:
        """The blocks so far, joined by blank lines."""
        return _PARAGRAPH_BREAK.join(self._blocks)

    def add_block(self, block: str) -> int:
        """Append a finished block (an empty one is dropped); returns the offset where it starts."""
        if self._blocks and block:
            self._length += len(_PARAGRAPH_BREAK)
        start = self._length
        if block:
            self._blocks.append(block)
            self._starts.append(start)
            self._length += len(block)
        return start

    def flush(self) -> None:
        """End the current run of inline text as one block, whitespace folded line by line."""
        lines = (_fold(line) for line in "".join(self._inline).split(_LINE_BREAK))
        self.add_block("\n".join(line for line in lines if line))
        self._inline.clear()

    def walk(self, root: Tag) -> None:
        """Collect the text under ``root`` without recursion, so deep nesting cannot overflow the stack."""
        from bs4 import NavigableString, Tag
        from bs4.element import PreformattedString

        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            if closing:
                self.flush()
                if node.name == "tr":
                    self._close_row()
            elif isinstance(node, NavigableString):
                if not isinstance(node, PreformattedString):
                    self._inline.append(_WHITESPACE.sub(" ", str(node)))
            elif isinstance(node, Tag) and not _is_hidden(node):
                self._open(node, stack)
        self.flush()

    def _open(self, tag: Tag, stack: list[tuple[Any, bool]]) -> None:
        if tag.name == "br":
            self._inline.append(_LINE_BREAK)
        elif tag.name in ("td", "th"):
            self._inline.append(" ")
        if tag.name in _HTML_HEADINGS or tag.name == "pre":
            self.flush()
            self._leaf_block(tag)
            return
        if tag.name in _HTML_BLOCKS:
            self.flush()
            stack.append((tag, True))
            if tag.name == "tr":
                self._open_rows.append((len(self._blocks), len(self.rows), self._table_headers(tag)))
        stack.extend((child, False) for child in reversed(tag.contents))

    def _close_row(self) -> None:
        first_block, rows_before, headers = self._open_rows.pop()
        # a row holding a table is no row: its own rows are
        if first_block < len(self._blocks) and len(self.rows) == rows_before:
            self.rows.append(Span(start=self._starts[first_block], end=self._length, label=headers))

    def _table_headers(self, row: Tag) -> tuple[str, ...]:
        """The <th> cells of the first header row of ``row``'s table."""
        table = row.find_parent("table")
        if table is None:
            return ()
        if id(table) not in self._headers:
            header_rows = (
                [_fold(" ".join(_visible_strings(cell))) for cell in tr.find_all("th", recursive=False)]
                for tr in table.find_all("tr")
                if tr.find_parent("table") is table
            )
            first = next((cells for cells in header_rows if cells), [])
            self._headers[id(table)] = tuple(first)
        return self._headers[id(table)]

    def _leaf_block(self, tag: Tag) -> None:
        if tag.name == "pre":
            self.add_block(tag.get_text().strip("\n").rstrip())
            return
        title = _fold(" ".join(_visible_strings(tag)))
        if title:
            self.headings.append((_HTML_HEADINGS[str(tag.name)], title, self.add_block(title)))


def _load_html(path: Path, data: bytes, doc_id: str) -> list[Document]:
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    _reject_binary(path, data)  # bytes go to BeautifulSoup as they are, so it can honour a <meta charset>
    with warnings.catch_warnings():  # XHTML pages read fine as HTML; the warning would only be noise
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(data, "lxml")
    extracted = _HtmlText()
    extracted.walk(soup.body or soup)
    text = _require_text(path, extracted.text)
    title_tag = soup.head.find("title") if soup.head else None  # not an inline <svg>'s <title>
    metadata_title = _fold(title_tag.get_text()) if title_tag else ""
    heading = _heading_title(extracted.headings, top_level=1)
    title = choose_title([metadata_title, heading], fallback=path.stem)
    return [
        Document(
            doc_id=doc_id,
            title=title,
            text=text,
            source=str(path),
            sections=_heading_sections(extracted.headings, len(text)),
            rows=extracted.rows,
        )
    ]


def _load_pdf(path: Path, data: bytes, doc_id: str) -> list[Document]:
    from retrieval.pdf import load_pdf

    return load_pdf(path, data, doc_id)


_DOCX_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)


def _docx_heading_level(paragraph: Paragraph) -> int | None:
    """0 for the Title style, N for "Heading N", None for body text."""
    name = (paragraph.style.name if paragraph.style is not None else None) or ""
    if name.lower() == "title":
        return 0
    match = _DOCX_HEADING_STYLE.match(name.strip())
    return int(match[1]) if match else None


def _docx_table_rows(table: Table) -> Iterator[tuple[str, ...]]:
    """Each row's non-empty cells."""
    for row in table.rows:
        cells = list(dict.fromkeys(row.cells))  # a merged cell repeats once per grid column it spans
        yield tuple(_fold(cell.text) for cell in cells if cell.text.strip())


# A block of a .docx: its text, its heading level (None for body text), and for a table row its table's
# header cells (None for a paragraph).
_DocxBlock = tuple[str, int | None, tuple[str, ...] | None]


def _docx_blocks(document: DocxDocument) -> Iterator[_DocxBlock]:
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text.strip(), _docx_heading_level(item), None
            continue
        rows = [cells for cells in _docx_table_rows(item) if cells]
        for index, cells in enumerate(rows):
            yield " | ".join(cells), None, rows[0] if index else ()


def _load_docx(path: Path, data: bytes, doc_id: str) -> list[Document]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml import etree  # python-docx's own XML parser; its syntax errors mean a corrupt .docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [block for block in _docx_blocks(document) if block[0]]
        core_title = (document.core_properties.title or "").strip()
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, etree.XMLSyntaxError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # str(KeyError) adds quotes
        raise LoaderError(str(path), f"corrupt .docx ({detail})") from exc
    headings: list[_Heading] = []
    rows: list[Span] = []
    offset = 0
    for block, level, headers in blocks:
        if level is not None:
            headings.append((level, block, offset))
        if headers is not None:
            rows.append(Span(start=offset, end=offset + len(block), label=headers))
        offset += len(block) + len(_PARAGRAPH_BREAK)
    text = _require_text(path, _PARAGRAPH_BREAK.join(block for block, _, _ in blocks))
    heading = _heading_title(headings, top_level=0)
    title = choose_title([core_title, heading, first_line_title(text)], fallback=path.stem)
    return [_headed_document(path, doc_id, title=title, text=text, headings=headings, rows=rows)]


def _corpus_document(path: Path, line: str, number: int) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        reason = f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
        raise LoaderError(str(path), reason) from exc
    if not isinstance(record, dict):
        raise LoaderError(str(path), f"line {number}: expected a JSON object, got {type(record).__name__}")
    if "_id" not in record:
        raise LoaderError(str(path), f"line {number}: missing '_id'")
    if "text" not in record:
        raise LoaderError(str(path), f"line {number}: missing 'text'")
    doc_id, title, text = record["_id"], record.get("title") or "", record["text"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or not str(doc_id).strip():
        raise LoaderError(str(path), f"line {number}: '_id' must be a non-empty string")
    if not isinstance(title, str) or not isinstance(text, str):
        raise LoaderError(str(path), f"line {number}: 'title' and 'text' must be strings")
    return Document(
        doc_id=str(doc_id),
        title=title.strip() or str(doc_id),
        text=text,
        source=str(path),
        metadata={"corpus": str(path)},
    )


def _load_jsonl(path: Path, data: bytes, doc_id: str) -> list[Document]:
    documents: list[Document] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_decode_text(path, data).split("\n"), start=1):
        if not line.strip():
            continue
        document = _corpus_document(path, line, number)
        if document.doc_id in first_line:
            first = first_line[document.doc_id]
            reason = f"line {number}: duplicate '_id' {document.doc_id!r} (first on line {first})"
            raise LoaderError(str(path), reason)
        first_line[document.doc_id] = number
        documents.append(document)
    if not documents:
        raise LoaderError(str(path), "empty file (no text)")
    return documents


_LOADERS: Mapping[str, Callable[[Path, bytes, str], list[Document]]] = MappingProxyType(
    {
        ".txt": _load_txt,
        ".md": _load_markdown,
        ".markdown": _load_markdown,
        ".html": _load_html,
        ".htm": _load_html,
        ".pdf": _load_pdf,
        ".docx": _load_docx,
        ".jsonl": _load_jsonl,
    }
)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_LOADERS)
