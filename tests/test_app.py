"""The web UI: ``app.py`` run by Streamlit's AppTest over a real index, and the helpers it lays out."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from agents.settings import load_settings
from agents.state import AnswerSentence, Citation, Passage, TraceEntry
from retrieval.index import DocProfile, Index
from retrieval.loaders import SUPPORTED_SUFFIXES
from retrieval.models import Document
from tests.openai_server import ScriptedOpenAI
from ui import library, view

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "corpus"
QUESTION = "Who was sent to China by the East India Company in 1848 to collect tea plants?"
PANELS = [
    "Query expansion",
    "Routing",
    "Retrieval",
    "Rerank",
    "Answer & verification",
    "Steps: time, LLM calls, tokens",
]
SECRET = "sk-test-0123456789abcdef"


# ----- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """A data home with the fixture corpus ingested once for this module's read-only app runs."""
    home = tmp_path_factory.mktemp("ui-corpus")
    index = Index(load_settings({"home": home}).index, embedder=embedder)
    report = index.ingest([FIXTURES], base=FIXTURES)
    assert not report.failed, report.failed
    return home


@pytest.fixture
def app_over_corpus(corpus_home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MULTIGRAIN_HOME", str(corpus_home))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()


@pytest.fixture
def empty_app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _citation_buttons(at: AppTest) -> list[Any]:
    return [b for b in at.button if re.match(r"\[\d+\] ", b.label)]


def _shown_text(at: AppTest) -> str:
    """Every message, caption and label the page shows (widget values excluded)."""
    elements = [*at.markdown, *at.caption, *at.error, *at.success, *at.info, *at.warning, *at.code, *at.text]
    labels = [w.label for w in [*at.button, *at.text_input, *at.expander]]
    return "\n".join([*(str(e.value) for e in elements), *labels])


# ----- the app, end to end ----------------------------------------------------------------------------


def test_a_question_gets_an_answer_citations_and_every_step_panel(
    app_over_corpus: AppTest, corpus_home: Path
):
    at = app_over_corpus
    at.chat_input[0].set_value(QUESTION).run()
    _no_exceptions(at)

    answers = [m.value for m in at.markdown if 'class="mg-answer"' in m.value]
    assert answers and "Robert Fortune" in html.unescape(answers[-1])
    assert re.search(r'class="mg-sentence mg-(supported|partial|unsupported)"', answers[-1])
    assert any("offline mode" in i.value for i in at.info)
    assert [e.label for e in at.expander if e.label in PANELS] == PANELS
    assert at.sidebar.radio[0].options[0].startswith(QUESTION[:40]), "the new thread is named by its question"
    buttons = _citation_buttons(at)
    assert buttons

    buttons[0].click().run()
    _no_exceptions(at)
    sources = [m.value for m in at.markdown if m.value.startswith('<div class="mg-source">')]
    assert len(sources) == 1
    marked = re.search(r'<mark class="mg-quote">(.*?)</mark>', sources[0], re.S)
    span = re.search(r"characters (\d+)–(\d+) of `([^`]+)`", "\n".join(c.value for c in at.caption))
    assert marked and span
    quote, (start, end, doc_id) = html.unescape(marked.group(1)), span.groups()
    document = Index(load_settings({"home": corpus_home}).index).document(doc_id)
    assert quote.strip() and quote == document.text[int(start) : int(end)]
    assert doc_id == "tea.html" and document.title in buttons[0].label

    asked = at.session_state["thread_id"]
    next(b for b in at.button if b.label == "New conversation").click().run()
    assert at.session_state["thread_id"] != asked and not _citation_buttons(at)
    conversations = at.sidebar.radio[0]
    assert conversations.value == at.session_state["thread_id"]
    assert conversations.options[0] == "New conversation" and QUESTION[:40] in conversations.options[1]
    conversations.set_value(asked).run()
    _no_exceptions(at)
    assert at.session_state["thread_id"] == asked and _citation_buttons(at)


def test_turning_rerank_off_reaches_the_next_answer(app_over_corpus: AppTest):
    at = app_over_corpus
    at.toggle(key="set_rerank").set_value(False)
    next(b for b in at.button if b.label == "Apply").click().run()
    _no_exceptions(at)
    assert any("Settings applied" in s.value for s in at.success)

    at.chat_input[0].set_value(QUESTION).run()
    _no_exceptions(at)
    answer = at.session_state["answers"][at.session_state["thread_id"]][-1]
    rerank = view.trace_entry(answer.trace, "rerank")
    assert rerank is not None and rerank["skipped"]
    assert any("Rerank was off for this answer" in i.value for i in at.info)


def test_first_start_offers_the_demo_and_an_upload_reports_each_bad_file(empty_app: AppTest, tmp_path: Path):
    at = empty_app
    _no_exceptions(at)
    assert any(b.label == "Load the demo corpus" for b in at.button)
    assert any("up to 50 MB per file" in c.value for c in at.caption)
    uploader = at.file_uploader[0]
    assert set(uploader.allowed_type) == set(SUPPORTED_SUFFIXES)
    assert uploader.proto.max_upload_size_mb == 50

    uploader.set_value(
        [
            (
                "notes.md",
                b"# Kites\n\nThe first kites were flown in China more than two thousand years ago.\n",
                "text/markdown",
            ),
            ("broken.pdf", b"this is not a PDF at all", "application/pdf"),
            ("blank.txt", b"   \n", "text/plain"),
        ]
    ).run()
    next(b for b in at.button if b.label.startswith("Ingest 3 file")).click().run()
    _no_exceptions(at)

    errors = {e.value.split(":", 1)[0]: e.value for e in at.error}
    assert set(errors) == {"broken.pdf", "blank.txt"}
    assert "empty file" in errors["blank.txt"]
    assert any("notes.md" in s.value for s in at.success)
    assert any(e.label.startswith("Kites") for e in at.expander)
    assert not any(b.label == "Load the demo corpus" for b in at.button)
    uploads = tmp_path / "home" / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["notes.md"]


def test_test_connection_names_the_failure_and_never_shows_the_key(empty_app: AppTest):
    at = empty_app
    with ScriptedOpenAI(["pong"] * 3, api_key="the-right-key-123") as server:
        at.text_input(key="set_base_url").set_value(server.base_url)
        at.text_input(key="set_api_key").set_value(SECRET)
        next(b for b in at.button if b.label == "Test connection").click().run()
        _no_exceptions(at)
        assert at.error, "a failed connection shows an error"
        assert "401" in at.error[0].value and "API key" in at.error[0].value
        assert SECRET not in _shown_text(at)

        at.text_input(key="set_api_key").set_value("the-right-key-123")
        next(b for b in at.button if b.label == "Apply").click().run()
        next(b for b in at.button if b.label == "Test connection").click().run()
        _no_exceptions(at)
    assert any("Connected to" in s.value and "pong" in s.value for s in at.success)
    assert at.text_input(key="set_api_key").value == ""
    assert "the-right-key-123" not in _shown_text(at)
    assert any("llm: gpt-4o-mini at http://127.0.0.1" in c.value for c in at.sidebar.caption)


# ----- the display helpers ------------------------------------------------------------------------------


def _citation(**changes: Any) -> Citation:
    base = Citation(
        number=1,
        chunk_id="d#c0",
        doc_id="d",
        title="Tea",
        page=None,
        section="History",
        start=4,
        end=9,
        quote="brown",
        verdict="supported",
        support=0.9,
    )
    base.update(changes)  # type: ignore[typeddict-item]  # tests override known keys by name
    return base


@pytest.mark.parametrize(
    ("page", "label"), [(None, "[1] Tea"), (3, "[1] Tea p. 3")], ids=["unpaged", "paged"]
)
def test_citation_label_names_number_title_and_page(page, label):
    assert view.citation_label(_citation(page=page)) == label


def test_source_view_marks_the_exact_span_and_escapes_the_rest():
    document = Document(
        doc_id="d", title="Tea", text="The brown <b>cat</b> costs $5\nand more.", source="d.txt"
    )
    shown = view.source_view(document, _citation())
    assert shown.exact and shown.quote == "brown"
    assert '<mark class="mg-quote">brown</mark>' in shown.html
    assert "&lt;b&gt;cat&lt;/b&gt;" in shown.html and "<b>" not in shown.html
    assert "$" not in shown.html and "&#36;5" in shown.html
    assert "\n" not in shown.html


def test_source_view_flags_a_span_that_does_not_hold_the_quote():
    document = Document(doc_id="d", title="Tea", text="The brown cat.", source="d.txt")
    assert not view.source_view(document, _citation(quote="green")).exact


def test_source_view_shows_the_citing_passage_around_the_quote():
    text = "A" * 500 + " The passage holds the quote here. " + "B" * 500
    start = text.index("quote")
    passage = Passage(
        chunk_id="d#c1", doc_id="d", title="T", text="", start=500, end=535, section="", page=None, score=0
    )
    shown = view.source_view(
        Document(doc_id="d", title="T", text=text, source="d"),
        _citation(start=start, end=start + 5, quote="quote"),
        passage=passage,
    )
    assert shown.html.startswith('<div class="mg-source">… The passage holds the <mark')
    assert "B" not in shown.html.replace("mg-", "")


def test_answer_html_shades_each_sentence_by_verdict():
    sentences = [
        AnswerSentence(text="Yes <really> [1]", citations=[1], verdict="supported", support=0.9),
        AnswerSentence(text="Partly [2]", citations=[2], verdict="partial", support=0.5),
        AnswerSentence(text="No [3]", citations=[3], verdict="unsupported", support=0.1),
        AnswerSentence(text="Unchecked", citations=[], verdict=None, support=0.0),
    ]
    rendered = view.answer_html(sentences)
    classes = re.findall(r'class="mg-sentence mg-(\w+)"', rendered)
    assert classes == ["supported", "partial", "unsupported", "unchecked"]
    assert "&lt;really&gt;" in rendered


def _entry(step: str, **outputs: Any) -> TraceEntry:
    return TraceEntry(
        step=step, seconds=0.5, skipped=False, inputs={}, outputs=outputs, llm_calls=2, tokens=40, degraded=[]
    )


def test_rerank_rows_show_each_passage_movement_and_what_was_kept():
    order = [
        {"chunk_id": "b", "before": 3, "after": 1},
        {"chunk_id": "a", "before": 1, "after": 2},
        {"chunk_id": "c", "before": 2, "after": 3},
    ]
    rows = view.rerank_rows([_entry("rerank", order=order, kept=2)], {"b": "Bees"})
    assert [(r["chunk"], r["moved"], r["kept"]) for r in rows] == [
        ("b", "▲ 2", True),
        ("a", "▼ 1", True),
        ("c", "▼ 1", False),
    ]
    assert rows[0]["document"] == "Bees"


def test_retrieval_tables_group_methods_under_their_query_variant():
    variants = [{"text": "who sent Fortune", "kind": "original"}, {"text": "fortune tea", "kind": "keywords"}]
    tables = view.retrieval_tables(
        {
            "merged/dense": ["x"],
            "original:0/dense": ["x", "y"],
            "original:0/bm25": ["y"],
            "keywords:1/bm25": ["z"],
        },
        variants,
        {"x": "Tea"},
    )
    assert list(tables) == ["all variants merged", "original: who sent Fortune", "keywords: fortune tea"]
    assert tables["original: who sent Fortune"] == [
        {"chunk": "x", "document": "Tea", "dense rank": 1},
        {"chunk": "y", "document": "", "dense rank": 2, "bm25 rank": 1},
    ]


def test_step_rows_and_live_lines_report_time_calls_and_tokens():
    entry = _entry("answer")
    assert view.step_rows([entry]) == [
        {"step": "answer", "seconds": 0.5, "LLM calls": 2, "tokens": 40, "skipped": False, "degraded": ""}
    ]
    assert view.step_line(entry) == "✓ Writing the answer: 0.50 s, 2 LLM calls, 40 tokens"
    assert view.next_stage_label("route") == "Searching passages…"
    assert view.next_stage_label("verify") == "Finishing…"
    assert view.degradation_notice([entry]) is None
    slipped = [_entry("expand"), {**_entry("rerank"), "degraded": ["window kept its order"]}]
    assert "Degraded: rerank fell back" in (view.degradation_notice(slipped) or "")


def test_settings_overrides_load_and_the_fingerprint_hides_but_tracks_the_key():
    overrides = library.settings_overrides(
        base_url=" http://127.0.0.1:9/v1 ",
        model="m",
        stages={"rerank": False},
        retrieve_k=7,
        rerank_k=3,
        route_min=2,
        route_max=4,
    )
    settings = load_settings(overrides)
    assert (settings.llm.base_url, settings.retrieve.k, settings.rerank.k) == ("http://127.0.0.1:9/v1", 7, 3)
    assert not settings.rerank.enabled and settings.expand.enabled and settings.verify.enabled
    with_key = load_settings({**overrides, "llm": {**overrides["llm"], "api_key": SECRET}})
    assert library.settings_fingerprint(with_key) != library.settings_fingerprint(settings)
    assert SECRET not in library.settings_fingerprint(with_key)


def test_check_connection_without_an_endpoint_says_offline():
    result = library.check_connection(load_settings())
    assert not result.ok and "offline" in result.message


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("C:\\docs\\a b.txt", "a b.txt"),
        (".hidden", "hidden"),
        ("", "upload"),
    ],
)
def test_safe_filename_keeps_uploads_inside_the_folder(name, clean):
    assert library.safe_filename(name) == clean


def test_ingest_uploads_refuses_types_and_sizes_before_saving(tmp_path: Path, embedder: Any):
    index = Index(
        load_settings({"home": tmp_path / "h", "index": {"max_file_mb": 0.001}}).index, embedder=embedder
    )
    outcome = library.ingest_uploads(
        index, [("tool.exe", b"MZ"), ("big.txt", b"x" * 2000)], tmp_path / "uploads"
    )
    reasons = dict(outcome.failed)
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert "over the 0.001 MB limit" in reasons["big.txt"]
    assert not list((tmp_path / "uploads").iterdir())
    assert index.documents() == []


def test_remove_document_drops_it_and_its_uploaded_file(tmp_path: Path, embedder: Any):
    index = Index(load_settings({"home": tmp_path / "h"}).index, embedder=embedder)
    folder = tmp_path / "uploads"
    outcome = library.ingest_uploads(index, [("kites.md", b"# Kites\n\nKites fly in the wind.\n")], folder)
    assert outcome.added == ["kites.md"]
    doc_id = (folder / "kites.md").resolve().as_posix()
    assert library.remove_document(index, doc_id, folder)
    assert index.documents() == [] and not (folder / "kites.md").exists()
    assert not library.remove_document(index, doc_id, folder)


@pytest.mark.parametrize(("pages", "shown"), [(0, False), (12, True)], ids=["unpaged", "paged"])
def test_profile_facts_name_the_document_and_its_size(pages, shown):
    profile = DocProfile(
        doc_id="a.pdf",
        title="A",
        source="/u/a.pdf",
        summary="",
        keywords=[],
        content_hash="",
        chunks=3,
        sentences=9,
        pages=pages,
        chars=12345,
    )
    facts = library.profile_facts(profile)
    assert "id `a.pdf` · 3 chunks · 9 sentences" in facts and "12,345 characters · /u/a.pdf" in facts
    assert ("12 pages" in facts) is shown


def test_thread_label_is_the_first_question_shortened():
    history = [
        {"question": QUESTION, "answer": "Robert Fortune [1]"},
        {"question": "When?", "answer": "1848"},
    ]
    assert view.thread_label(history) == QUESTION[: view.THREAD_LABEL_CHARS - 1] + "…"
    assert view.thread_label([]) == "New conversation"
    same = [{"question": "Why?", "answer": ""}]
    assert list(view.thread_labels({"a": same, "b": [], "c": same}).values()) == [
        "Why?",
        "New conversation",
        "Why? (2)",
    ]


def test_fused_rows_say_which_passages_joined_by_a_link_and_what_named_them():
    def passage(chunk_id: str, title: str) -> Passage:
        return Passage(
            chunk_id=chunk_id,
            doc_id=title,
            title=title,
            text="t",
            start=0,
            end=1,
            section="",
            page=None,
            score=0.1,
        )

    passages = [passage("f#c0", "Black Book"), passage("r#c0", "Halina Reijn"), passage("v#c0", "Verhoeven")]
    linked = [{"chunk_id": "r#c0", "named_by": "f#c0"}, {"chunk_id": "v#c0", "named_by": "question"}]
    rows = view.fused_rows(passages, [_entry("retrieve", linked=linked)])
    assert [r["found by"] for r in rows] == ["search", "named in Black Book", "named in the question"]
    assert [r["found by"] for r in view.fused_rows(passages, [])] == ["search"] * 3
