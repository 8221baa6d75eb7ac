"""Document text reaches the page only as literal text: no image it names is loaded, no link or HTML it holds
is rendered, in any Markdown the app shows (bodies, captions, notices, expander and button labels, tooltips).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from agents.settings import load_settings
from retrieval.index import Index
from ui import view

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "![x](http://127.0.0.1:9/x.png)"
LINK = "[link](javascript:alert(1))"
TAG = '<img src="http://127.0.0.1:9/tag.png" onerror="alert(1)">'
TITLE = f"Skerryvore {IMAGE} **bold** {LINK} {TAG}"
SECTION = f"Keepers {IMAGE} <b>night</b> $x$"
FILE_NAME = "keeper [a](javascript:b) `x`.md"
DOCUMENT = f"""# {TITLE}

## {SECTION}

The Skerryvore lighthouse keeper {IMAGE} lit the lamp {LINK} every evening at dusk, {TAG} and trimmed the wick
at midnight so the light would burn until dawn.

The lamp of the Skerryvore lighthouse burned colza oil <script>alert(1)</script> before paraffin replaced it.
"""
QUESTION = "When did the Skerryvore lighthouse keeper light the lamp?"
ALLOWED_TAGS = {"p", "strong", "em", "code", "br", "div", "span", "mark", "style"}
# The same Markdown Streamlit renders: CommonMark with raw HTML (for unsafe_allow_html), GFM tables and
# strikethrough. A string that renders to no link, image or foreign tag here renders none in the browser.
MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@pytest.fixture(scope="module")
def evil_home(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    home = tmp_path_factory.mktemp("ui-evil")
    folder = home / "docs"
    folder.mkdir()
    (folder / FILE_NAME).write_text(DOCUMENT, encoding="utf-8")
    report = Index(load_settings({"home": home}).index, embedder=embedder).ingest([folder], base=folder)
    assert report.added == [FILE_NAME], report
    return home


def _shown_markdown(at: AppTest) -> list[str]:
    """Every string the page passes through Markdown: bodies, notices, captions, labels, tooltips."""
    bodies = [*at.markdown, *at.caption, *at.error, *at.success, *at.info, *at.warning]
    labels = [w.label for w in [*at.button, *at.expander]]
    tooltips = [b.help for b in at.button if b.help]
    return [*(str(e.value) for e in bodies), *labels, *tooltips]


def _tags(markdown: str) -> set[str]:
    return {tag.lower() for tag in re.findall(r"<([a-zA-Z][\w-]*)", MARKDOWN.render(markdown))}


def _visible(markdown: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", MARKDOWN.render(markdown)))


def test_document_text_shows_literally_and_renders_no_image_link_or_html(
    evil_home: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MULTIGRAIN_HOME", str(evil_home))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, [e.value for e in at.exception]
    citations = [b for b in at.button if re.match(r"\[\d+\] ", b.label)]
    assert citations, "the answer cites the document"
    citations[0].click().run()
    assert not at.exception, [e.value for e in at.exception]

    shown = _shown_markdown(at)
    for markdown in shown:
        assert _tags(markdown) <= ALLOWED_TAGS, (markdown, MARKDOWN.render(markdown))
    visible = "\n".join(_visible(markdown) for markdown in shown)
    for literal in (TITLE, SECTION, FILE_NAME, "lit the lamp"):
        assert literal in visible, f"{literal!r} is not shown as written"
    assert any(IMAGE in _visible(b.label) for b in citations), "the button shows the title as written"
    assert any(IMAGE in _visible(e.label) for e in at.expander), "the library shows the title as written"


@pytest.mark.parametrize(
    "text",
    [
        TITLE,
        SECTION,
        "# heading\n- item\n+ item\n1. one\n2) two\n> quote\n---\n| a | b |\n|---|---|\n| 1 | 2 |",
        "a\\b &amp; &#60;i&#62; ~~gone~~ _em_ `code` <https://example.org>",
    ],
    ids=["title", "section", "line-starts", "escapes-entities-autolinks"],
)
def test_markdown_text_renders_as_exactly_the_text(text):
    escaped = view.markdown_text(text)
    assert _tags(escaped) <= {"p", "br"}, MARKDOWN.render(escaped)
    assert " ".join(_visible(escaped).split()) == " ".join(text.split())


@pytest.mark.parametrize("text", ["tea.html", "a`b", "`x", "a``b` ", " a "])
def test_markdown_code_shows_any_id_exactly(text):
    assert MARKDOWN.renderInline(view.markdown_code(text)) == f"<code>{html.escape(text)}</code>"
