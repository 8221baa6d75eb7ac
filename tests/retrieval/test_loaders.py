"""Loaders: every format to Documents whose spans slice their own text, and every refusal with its reason."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pypdfium2 as pdfium
import pytest

from retrieval.errors import LoaderError
from retrieval.loaders import SUPPORTED_SUFFIXES, iter_files, load_file
from retrieval.models import Document

MB = 1024 * 1024
LIMIT = 10 * MB


def load_one(path: Path, doc_id: str = "doc-1") -> Document:
    [document] = load_file(path, doc_id=doc_id, max_bytes=LIMIT)
    return document


def load_error(path: Path, max_bytes: int = LIMIT) -> str:
    with pytest.raises(LoaderError) as caught:
        load_file(path, doc_id="doc-1", max_bytes=max_bytes)
    assert caught.value.path == str(path)
    assert str(caught.value) == f"{path}: {caught.value.reason}"
    return caught.value.reason


def assert_spans_valid(document: Document) -> None:
    for span in [*document.sections, *document.pages]:
        assert 0 <= span.start <= span.end <= len(document.text), span


def section_map(document: Document) -> dict[tuple[str, ...], str]:
    return {span.label: document.text[span.start : span.end] for span in document.sections}


# --- PDF fixtures, written by hand: Helvetica text objects, exact xref offsets, optional RC4-40 encryption.

_PASSWORD_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_PERMISSIONS = -44


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PASSWORD_PAD)[:32]


def _standard_security(user_password: str, file_id: bytes) -> tuple[bytes, bytes]:
    """PDF 1.4 standard security handler, revision 2 (RC4, 40-bit): the file key and the /Encrypt dict."""
    owner_entry = _rc4(hashlib.md5(_padded("owner")).digest()[:5], _padded(user_password))
    key_input = _padded(user_password) + owner_entry + struct.pack("<i", _PERMISSIONS) + file_id
    key = hashlib.md5(key_input).digest()[:5]
    user_entry = _rc4(key, _PASSWORD_PAD)
    encrypt = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
        owner_entry.hex().encode(),
        user_entry.hex().encode(),
        _PERMISSIONS,
    )
    return key, encrypt


def make_pdf(pages: list[list[str]], *, title: str | None = None, user_password: str | None = None) -> bytes:
    file_id = hashlib.md5(repr((pages, title)).encode()).digest()
    key, encrypt = _standard_security(user_password, file_id) if user_password is not None else (None, b"")

    def seal(number: int, data: bytes) -> bytes:
        if key is None:
            return data
        return _rc4(hashlib.md5(key + number.to_bytes(3, "little") + b"\0\0").digest()[:10], data)

    page_numbers = [4 + 2 * index for index in range(len(pages))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % n for n in page_numbers), len(pages)),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for number, lines in zip(page_numbers, pages, strict=True):
        shown = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
        shows = [b"(%s) Tj T*" % line.encode("latin-1") for line in shown]
        ops = b"\n".join([b"BT /F1 12 Tf 72 720 Td 16 TL", *shows, b"ET"])
        content = seal(number + 1, ops if lines else b"")
        objects[number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (number + 1)
        )
        objects[number + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    trailer = b"/Root 1 0 R /ID [<%s> <%s>]" % (file_id.hex().encode(), file_id.hex().encode())
    if title is not None:
        number = len(objects) + 1
        objects[number] = b"<< /Title <%s> >>" % seal(number, title.encode("latin-1")).hex().encode()
        trailer += b" /Info %d 0 R" % number
    if key is not None:
        objects[len(objects) + 1] = encrypt
        trailer += b" /Encrypt %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number in sorted(objects):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref_at)
    return bytes(out)


# --- Fixture files.

MARKDOWN = """Preamble before any heading.

# Guide

Intro text.

## Install ##

```bash
# this is a shell comment, not a heading
pip install multigrain
```

~~~
## still code
~~~

### From source

Build it.

## Usage

    # indented code, not a heading

#hashtag is not a heading either

# Appendix
Last words.
"""

HTML = """<!DOCTYPE html>
<html><head><title> Field   Guide </title><style>h1 { color: red }</style>
<script>var note = "# not text";</script></head>
<body>
<header><p>Site header</p></header>
<nav><a href="/">Home</a> <a href="/blog">Blog</a></nav>
<h1>Birds</h1>
<p>Birds   are
   <b>warm-blooded</b> vertebrates.</p>
<noscript>Enable JavaScript</noscript>
<h2>Song<a class="headerlink" hidden>#</a></h2>
<div><p>First para.</p><p>Second<br>line two.</p></div>
<script>alert("hidden")</script>
<h3>Dawn <em>chorus</em></h3>
<ul><li>Robin</li><li>Wren</li></ul>
<pre>code  keeps
   spacing</pre>
<h2>Flight</h2>
<p style="display: none">invisible</p>
<table><tr><th>part</th><th>size</th></tr><tr><td>wing</td><td>span</td></tr></table>
<!-- a comment -->
<footer>Copyright</footer>
</body></html>"""

HTML_TEXT = (
    "Birds\n\nBirds are warm-blooded vertebrates.\n\nSong\n\nFirst para.\n\nSecond\nline two.\n\n"
    "Dawn chorus\n\nRobin\n\nWren\n\ncode  keeps\n   spacing\n\nFlight\n\npart size\n\nwing span"
)

PDF_PAGES = [["Alpha page one", "second line"], ["Beta (page) two"], [], ["Delta page four"]]


def write_markdown(tmp_path: Path) -> Path:
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    return path


def write_html(tmp_path: Path) -> Path:
    path = tmp_path / "birds.html"
    path.write_text(HTML, encoding="utf-8")
    return path


def write_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(PDF_PAGES, title="Quarterly Report"))
    return path


def write_docx(tmp_path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Handbook", 0)
    document.add_paragraph("Opening words.")
    document.add_heading("Intro", 1)
    document.add_paragraph("Intro body.")
    document.add_paragraph("   ")
    document.add_heading("Background", 2)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "merged"
    table.cell(0, 2).text = "c"
    table.cell(1, 0).text = "x"
    table.cell(1, 1).text = "y"
    document.add_heading("Usage", 1)
    document.add_paragraph("Run it.")
    path = tmp_path / "handbook.docx"
    document.save(str(path))
    return path


def write_txt(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("\n  \n  First line of notes  \nsecond line\n", encoding="utf-8")
    return path


def write_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    records = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin thins blood."},
        {"_id": "d2", "title": "", "text": "Untitled text.", "metadata": {}},
        {"_id": "d3", "text": "No title key."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n\n" + json.dumps(records[2]) + "\n")
    return path


WRITERS: dict[str, Callable[[Path], Path]] = {
    "txt": write_txt,
    "md": write_markdown,
    "html": write_html,
    "pdf": write_pdf,
    "docx": write_docx,
    "jsonl": write_jsonl,
}


def test_supported_suffixes_are_the_documented_ones() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_format_gives_spans_inside_its_text(tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](tmp_path)
    documents = load_file(path, doc_id="given-id", max_bytes=LIMIT)
    assert documents
    for document in documents:
        assert document.source == str(path)
        assert document.text.strip()
        assert document.title
        assert_spans_valid(document)
        if kind != "jsonl":
            assert document.doc_id == "given-id"


# --- Plain text.


def test_txt_keeps_text_and_takes_first_nonempty_line_as_title(tmp_path: Path) -> None:
    document = load_one(write_txt(tmp_path))
    assert document.text == "\n  \n  First line of notes  \nsecond line\n"
    assert document.title == "First line of notes"
    assert document.sections == [] and document.pages == []


def test_txt_title_is_cut_to_120_characters(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("word " * 60, encoding="utf-8")
    assert load_one(path).title == ("word " * 24).strip()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (codecs.BOM_UTF8 + "Café\r\nnext".encode(), "Café\r\nnext"),
        (codecs.BOM_UTF16_LE + "Grüße".encode("utf-16-le"), "Grüße"),
        (codecs.BOM_UTF16_BE + "Grüße".encode("utf-16-be"), "Grüße"),
    ],
    ids=["utf8-bom", "utf16-le", "utf16-be"],
)
def test_txt_decodes_byte_order_marks(tmp_path: Path, raw: bytes, text: str) -> None:
    path = tmp_path / "encoded.txt"
    path.write_bytes(raw)
    document = load_one(path)
    assert document.text == text
    assert document.title == text.splitlines()[0]


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert load_error(path) == "binary file, not text"


def test_undecodable_bytes_report_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes("naïve".encode("latin-1"))
    assert load_error(path) == "not UTF-8 text (undecodable bytes at offset 2)"


def test_undecodable_offset_counts_the_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"ok\xff")
    assert load_error(path) == "not UTF-8 text (undecodable bytes at offset 5)"


# --- Markdown.


def test_markdown_text_is_the_raw_file(tmp_path: Path) -> None:
    document = load_one(write_markdown(tmp_path))
    assert document.text == MARKDOWN
    assert document.title == "Guide"


def test_markdown_sections_follow_heading_nesting_and_skip_code(tmp_path: Path) -> None:
    document = load_one(write_markdown(tmp_path))
    assert [span.label for span in document.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "From source"),
        ("Guide", "Usage"),
        ("Appendix",),
    ]
    sections = section_map(document)
    assert sections[("Guide",)] == "# Guide\n\nIntro text.\n\n"
    assert sections[("Guide", "Install")].startswith("## Install ##\n\n```bash\n# this is a shell comment")
    assert sections[("Guide", "Install")].endswith("~~~\n## still code\n~~~\n\n")
    assert sections[("Guide", "Install", "From source")] == "### From source\n\nBuild it.\n\n"
    assert "#hashtag" in sections[("Guide", "Usage")]
    assert sections[("Appendix",)] == "# Appendix\nLast words.\n"
    assert document.sections[0].start == MARKDOWN.index("# Guide")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("## Second level\n\nbody\n\n# Top\n", "Top"),
        ("intro\n\n### Only a third level\n", "Only a third level"),
        ("no headings here\n", "plain"),
    ],
)
def test_markdown_title_prefers_h1_then_any_heading_then_stem(tmp_path: Path, text: str, title: str) -> None:
    path = tmp_path / "plain.markdown"
    path.write_text(text, encoding="utf-8")
    assert load_one(path).title == title


def test_markdown_with_crlf_line_ends_keeps_offsets(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(b"# One\r\nbody\r\n## Two ##\r\nmore\r\n")
    document = load_one(path)
    assert section_map(document) == {("One",): "# One\r\nbody\r\n", ("One", "Two"): "## Two ##\r\nmore\r\n"}


def test_unclosed_fence_hides_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fence.md"
    path.write_text("# Real\n````\n# fake\n```\n# still fake\n", encoding="utf-8")
    assert [span.label for span in load_one(path).sections] == [("Real",)]


def _random_markdown(rng: random.Random) -> tuple[str, list[tuple[str, ...]]]:
    """A markdown text of headings, prose and fences, with the labels a correct loader must produce."""
    parts: list[str] = []
    expected: list[tuple[str, ...]] = []
    open_headings: list[tuple[int, str]] = []
    for index in range(rng.randint(0, 12)):
        choice = rng.random()
        if choice < 0.45:
            level = rng.randint(1, 6)
            title = f"H{index} {rng.choice(['alpha', 'beta #tag', 'gamma'])}"
            while open_headings and open_headings[-1][0] >= level:
                open_headings.pop()
            open_headings.append((level, title))
            expected.append(tuple(name for _, name in open_headings))
            closing = rng.choice(["", " ##", " #"])
            parts.append(f"{' ' * rng.randint(0, 3)}{'#' * level} {title}{closing}\n")
        elif choice < 0.6:
            fence = rng.choice(["```", "~~~", "````"])
            parts.append(f"{fence}python\n# comment {index}\n## also code\n{fence}\n")
        else:
            parts.append(rng.choice(["text line\n", "\n", "ünïcödé ✓ line\r\n", "#notaheading\n"]))
    return "".join(parts), expected


def test_markdown_spans_hold_for_many_random_documents(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "random.md"
    for _ in range(300):
        text, expected = _random_markdown(rng)
        if not text.strip():
            continue
        path.write_text(text, encoding="utf-8", newline="")
        document = load_one(path)
        assert document.text == text
        assert_spans_valid(document)
        assert [span.label for span in document.sections] == expected
        for span, following in zip(document.sections, document.sections[1:], strict=False):
            assert span.end == following.start
        for span in document.sections:
            assert document.text[span.start : span.end].lstrip(" ").startswith("#")
        if document.sections:
            assert document.sections[-1].end == len(text)


# --- HTML.


def test_html_keeps_visible_text_in_blocks(tmp_path: Path) -> None:
    document = load_one(write_html(tmp_path))
    assert document.text == HTML_TEXT
    assert document.title == "Field Guide"
    hidden = ["Site header", "Home", "Blog", "Enable JavaScript", "alert", "color", "invisible", "Copyright"]
    assert [phrase for phrase in hidden if phrase in document.text] == []


def test_html_sections_are_heading_paths_over_extracted_text(tmp_path: Path) -> None:
    document = load_one(write_html(tmp_path))
    assert section_map(document) == {
        ("Birds",): "Birds\n\nBirds are warm-blooded vertebrates.\n\n",
        ("Birds", "Song"): "Song\n\nFirst para.\n\nSecond\nline two.\n\n",
        ("Birds", "Song", "Dawn chorus"): "Dawn chorus\n\nRobin\n\nWren\n\ncode  keeps\n   spacing\n\n",
        ("Birds", "Flight"): "Flight\n\npart size\n\nwing span",
    }


@pytest.mark.parametrize(
    ("html", "title"),
    [
        ("<html><body><h2>Sub</h2><h1>Main <i>heading</i></h1><p>x</p></body></html>", "Main heading"),
        ("<html><head><title>  </title></head><body><h3>Only h3</h3></body></html>", "Only h3"),
        ("<p>Just a fragment &amp; no headings</p>", "page"),
    ],
)
def test_html_title_prefers_title_then_h1_then_stem(tmp_path: Path, html: str, title: str) -> None:
    path = tmp_path / "page.htm"
    path.write_text(html, encoding="utf-8")
    assert load_one(path).title == title


def test_html_fragment_without_blocks_is_one_paragraph(tmp_path: Path) -> None:
    path = tmp_path / "fragment.html"
    path.write_text("Just <b>inline</b>\n   text &amp; more", encoding="utf-8")
    assert load_one(path).text == "Just inline text & more"


def test_html_honours_its_declared_charset(tmp_path: Path) -> None:
    path = tmp_path / "legacy.html"
    path.write_bytes('<meta charset="windows-1252"><p>café – ok</p>'.encode("cp1252"))
    assert load_one(path).text == "café – ok"


@pytest.mark.filterwarnings("error")
def test_xhtml_reads_without_warnings_and_ignores_svg_titles(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        "<svg><title>icon</title></svg><h1>Real heading</h1><p>Body.</p></body></html>",
        encoding="utf-8",
    )
    document = load_one(path)
    assert (document.title, document.text) == ("Real heading", "Real heading\n\nBody.")


def test_html_spans_hold_for_many_random_documents(tmp_path: Path) -> None:
    rng = random.Random(99)
    path = tmp_path / "random.html"
    tags = ["p", "div", "span", "b", "li", "section", "script", "nav", "pre"]
    for _ in range(150):
        body = []
        for index in range(rng.randint(1, 10)):
            if rng.random() < 0.4:
                body.append(f"<h{rng.randint(1, 6)}> Head {index} </h{rng.randint(1, 6)}>")
            else:
                tag = rng.choice(tags)
                body.append(f"<{tag}>text {index}\n  more<br>words</{tag}>")
        path.write_text("<html><body>" + "".join(body) + "</body></html>", encoding="utf-8")
        try:
            document = load_one(path)
        except LoaderError as error:
            assert error.reason == "empty file (no text)"
            continue
        assert_spans_valid(document)
        for span in document.sections:
            assert document.text[span.start : span.end].startswith(span.label[-1])


# --- PDF.


def test_pdf_pages_are_joined_with_page_spans(tmp_path: Path) -> None:
    document = load_one(write_pdf(tmp_path))
    assert document.text == "Alpha page one\nsecond line\n\nBeta (page) two\n\n\n\nDelta page four"
    assert document.title == "Quarterly Report"
    assert [span.page for span in document.pages] == [1, 2, 3, 4]
    assert [document.text[span.start : span.end] for span in document.pages] == [
        "Alpha page one\nsecond line",
        "Beta (page) two",
        "",
        "Delta page four",
    ]
    assert [span.label for span in document.sections] == [("Page 1",), ("Page 2",), ("Page 3",), ("Page 4",)]
    assert [(s.start, s.end) for s in document.sections] == [(s.start, s.end) for s in document.pages]
    assert document.page_at(document.text.index("Beta")) == 2
    assert document.page_at(document.text.index("Delta")) == 4


def test_pdf_without_title_metadata_is_named_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "untitled-scan.pdf"
    path.write_bytes(make_pdf([["Some words"]]))
    assert load_one(path).title == "untitled-scan"


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    data = make_pdf([["Secret words"]], title="Locked", user_password="s3cret")
    with pdfium.PdfDocument(data, password="s3cret") as unlocked:  # the fixture is a real encrypted PDF
        assert unlocked[0].get_textpage().get_text_range() == "Secret words"
    path = tmp_path / "locked.pdf"
    path.write_bytes(data)
    assert load_error(path) == "encrypted PDF (password required)"


@pytest.mark.parametrize(
    "damage",
    [lambda pdf: pdf[: len(pdf) // 2], lambda pdf: pdf[:-40], lambda pdf: b"%PDF-1.4\nnot really a pdf\n"],
    ids=["half", "no-trailer", "garbage"],
)
def test_corrupt_pdf_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(damage(make_pdf(PDF_PAGES)))
    reason = "corrupt or unreadable PDF (Failed to load document (PDFium: Data format error))"
    assert load_error(path) == reason


def test_pdf_without_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    reason = (
        "PDF has no extractable text (2 pages without a text layer; scanned images? OCR is not supported)"
    )
    assert load_error(path) == reason


# --- Word.


def test_docx_paragraphs_tables_and_heading_sections(tmp_path: Path) -> None:
    document = load_one(write_docx(tmp_path))
    assert document.text == (
        "Handbook\n\nOpening words.\n\nIntro\n\nIntro body.\n\n"
        "Background\n\nmerged | c\n\nx | y\n\nUsage\n\nRun it."
    )
    assert document.title == "Handbook"
    assert section_map(document) == {
        ("Handbook",): "Handbook\n\nOpening words.\n\n",
        ("Handbook", "Intro"): "Intro\n\nIntro body.\n\n",
        ("Handbook", "Intro", "Background"): "Background\n\nmerged | c\n\nx | y\n\n",
        ("Handbook", "Usage"): "Usage\n\nRun it.",
    }


def test_docx_title_comes_from_core_properties_first(tmp_path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Official Title"
    document.add_heading("Chapter", 1)
    document.add_paragraph("Body.")
    path = tmp_path / "props.docx"
    document.save(str(path))
    loaded = load_one(path)
    assert loaded.title == "Official Title"
    assert [span.label for span in loaded.sections] == [("Chapter",)]


def test_docx_without_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.docx"
    docx.Document().save(str(path))
    assert load_error(path) == "empty file (no text)"


def test_truncated_docx_is_corrupt(tmp_path: Path) -> None:
    path = write_docx(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    assert load_error(path) == "corrupt .docx (File is not a zip file)"


def test_zip_that_is_not_a_docx_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    assert load_error(path) == "corrupt .docx (There is no item named '[Content_Types].xml' in the archive)"


# --- BEIR corpus.


def test_jsonl_corpus_gives_one_document_per_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path)
    documents = load_file(path, doc_id="ignored", max_bytes=LIMIT)
    assert [(d.doc_id, d.title, d.text) for d in documents] == [
        ("d1", "Aspirin", "Aspirin thins blood."),
        ("d2", "d2", "Untitled text."),
        ("d3", "d3", "No title key."),
    ]
    assert all(d.metadata == {"corpus": str(path)} and d.source == str(path) for d in documents)


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (
            ['{"_id": "a", "text": "x"}', '{"_id": "b", "text": '],
            "line 2: invalid JSON (Expecting value at column 22)",
        ),
        (['{"_id": "a", "text": "x"}', "", '{"title": "t", "text": "x"}'], "line 3: missing '_id'"),
        (['{"_id": "a", "title": "t"}'], "line 1: missing 'text'"),
        (['["_id", "text"]'], "line 1: expected a JSON object, got list"),
        (['{"_id": "", "text": "x"}'], "line 1: '_id' must be a non-empty string"),
        (['{"_id": "a", "text": 5}'], "line 1: 'title' and 'text' must be strings"),
        (
            ['{"_id": "a", "text": "x"}', '{"_id": "b", "text": "y"}', '{"_id": "a", "text": "z"}'],
            "line 3: duplicate '_id' 'a' (first on line 1)",
        ),
        (["", "  ", ""], "empty file (no text)"),
    ],
    ids=["json", "no-id", "no-text", "not-object", "blank-id", "text-type", "duplicate", "blank-lines"],
)
def test_bad_jsonl_line_is_named(tmp_path: Path, lines: list[str], reason: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_error(path) == reason


def test_jsonl_line_numbers_survive_unicode_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    first = json.dumps({"_id": "a", "text": "one\u2028two"}, ensure_ascii=False)
    path.write_text(first + "\n{broken\n", encoding="utf-8")
    assert load_error(path).startswith("line 2: invalid JSON")


# --- Refusals common to every format.


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "], ids=["zero-bytes", "whitespace"])
def test_empty_file_is_refused(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(content)
    assert load_error(path) == "empty file (no text)"


@pytest.mark.parametrize("name", ["only-scripts.html", "bom-only.txt"])
def test_text_that_is_only_whitespace_after_decoding_is_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    content = b"<script>x()</script><nav>menu</nav>" if name.endswith(".html") else codecs.BOM_UTF8 + b"\n "
    path.write_bytes(content)
    assert load_error(path) == "empty file (no text)"


@pytest.mark.parametrize("kind", ["txt", "pdf", "jsonl"])
def test_oversize_file_is_refused_before_reading(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"big.{kind}"
    path.write_bytes(b"x" * int(1.5 * MB))
    assert load_error(path, max_bytes=MB) == "file is 1.5 MB, over the 1 MB limit (raise max_file_mb)"


def test_oversize_limit_keeps_its_fraction(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    path.write_bytes(b"x" * MB)
    assert load_error(path, max_bytes=MB // 2) == "file is 1.0 MB, over the 0.5 MB limit (raise max_file_mb)"


@pytest.mark.parametrize(("name", "kind"), [("table.xlsx", "'.xlsx'"), ("Makefile", "(no extension)")])
def test_unsupported_type_is_refused(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text("data", encoding="utf-8")
    supported = ".docx, .htm, .html, .jsonl, .markdown, .md, .pdf, .txt"
    assert load_error(path) == f"unsupported file type {kind} (supported: {supported})"


def test_suffix_is_matched_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "README.MD"
    path.write_text("# Read me\n", encoding="utf-8")
    assert load_one(path).title == "Read me"


@pytest.mark.parametrize(
    ("make", "reason"), [(False, "no such file or folder"), (True, "is a folder, not a file")]
)
def test_missing_path_or_folder_is_refused(tmp_path: Path, make: bool, reason: str) -> None:
    path = tmp_path / "notes.txt"
    if make:
        path.mkdir()
    assert load_error(path) == reason


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    assert load_error(path) == "not a regular file"


# --- Finding files.


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for name in [
        "b.md",
        "a.txt",
        "sub/c.pdf",
        "sub/deep/d.md",
        "drafts/e.md",
        ".hidden.md",
        ".git/config.md",
        "sub/.cache/f.md",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    return root


def relative(paths: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ((), (), ["a.txt", "b.md", "drafts/e.md", "sub/c.pdf", "sub/deep/d.md"]),
        (("*.md",), (), ["b.md", "drafts/e.md", "sub/deep/d.md"]),
        (("sub/*",), (), ["sub/c.pdf", "sub/deep/d.md"]),
        (("*.md",), ("drafts/*",), ["b.md", "sub/deep/d.md"]),
        ((), ("d.md", "*.txt"), ["b.md", "drafts/e.md", "sub/c.pdf"]),
        (("*.docx",), (), []),
    ],
    ids=["all", "by-name", "by-relative-path", "include-and-exclude", "exclude-names", "nothing"],
)
def test_iter_files_walks_sorted_filtered_and_skips_hidden(
    tree: Path, include: tuple[str, ...], exclude: tuple[str, ...], expected: list[str]
) -> None:
    assert relative(list(iter_files([tree], include=include, exclude=exclude)), tree) == expected


def test_iter_files_accepts_files_and_drops_repeats(tree: Path) -> None:
    found = list(iter_files([tree / "sub", tree / ".hidden.md", tree / "sub" / "c.pdf"]))
    assert relative(found, tree) == ["sub/c.pdf", "sub/deep/d.md", ".hidden.md"]


def test_iter_files_filters_a_named_file_by_its_name(tree: Path) -> None:
    assert list(iter_files([tree / "a.txt"], exclude=["*.txt"])) == []


def test_iter_files_refuses_a_missing_path_before_yielding(tree: Path) -> None:
    missing = tree / "nope"
    with pytest.raises(LoaderError) as caught:
        next(iter_files([tree, missing]))
    assert (caught.value.path, caught.value.reason) == (str(missing), "no such file or folder")
