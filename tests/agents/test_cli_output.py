"""What the CLI prints from documents reaches the terminal without its control sequences; JSON stays exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import app, terminal_text

OSC_TITLE = "\x1b]0;pwned\x07"  # sets the terminal window's title
CLEAR = "\x1b[2J"  # clears the screen
C1_CLEAR = "\x9b2J"  # the same as one 8-bit control character
TITLE = f"Skerryvore {OSC_TITLE}keepers"
TEXT = (
    f"# {TITLE}\n\n"
    f"The Skerryvore keeper{CLEAR} lit the lamp at dusk every evening{C1_CLEAR} and trimmed the wick at "
    f"midnight.{OSC_TITLE} The keeper kept a log of every ship that passed the rock in the night.\n"
)
DOC_NAME = f"lamp{OSC_TITLE}.md"
BAD_NAME = f"empty{CLEAR}.txt"
QUESTION = "When did the Skerryvore keeper light the lamp?"

runner = CliRunner()


def assert_clean(text: str) -> None:
    """None of the document's control sequences, nor any of their pieces, reached the terminal."""
    for piece in ("\x1b]", "\x07", CLEAR, "\x9b", "]0;", "[2J"):
        assert piece not in text, f"{piece!r} printed in {text!r}"


def run(*args: str) -> tuple[str, str]:
    """Run as on a colour terminal (Click strips no escape sequences then); stdout and stderr."""
    result = runner.invoke(app, list(args), color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.stdout, result.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-output")
    folder = home / "docs"
    folder.mkdir()
    (folder / DOC_NAME).write_text(TEXT, encoding="utf-8")
    (folder / BAD_NAME).write_text("")
    return home


@pytest.fixture
def ingested(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The ingest run's stdout and stderr (the first run ingests; later ones find the file unchanged)."""
    monkeypatch.setenv("MULTIGRAIN_HOME", str(home))
    return run("ingest", str(home / "docs"))


def test_the_ingest_summary_names_a_failed_file_without_its_control_sequences(ingested):
    stdout, stderr = ingested
    assert_clean(stdout + stderr)
    assert "empty.txt: empty file" in stdout


def test_docs_prints_clean_titles_and_json_keeps_them_exact(ingested):
    stdout, stderr = run("docs")
    assert_clean(stdout + stderr)
    assert "Skerryvore keepers" in stdout and "lamp.md" in stdout

    listed = json.loads(run("docs", "--json")[0])
    assert [d["title"] for d in listed] == [TITLE]
    assert listed[0]["doc_id"].endswith(DOC_NAME)
    raw = run("docs", "--json")[0]
    assert "\x1b" not in raw and "\x07" not in raw and "\x9b" not in raw, "JSON escapes every control"


def test_ask_streams_and_cites_without_control_sequences(ingested):
    stdout, stderr = run("ask", QUESTION, "--show-trace")
    assert_clean(stdout)
    assert "lit the lamp at dusk" in stdout and "Skerryvore keepers" in stdout
    assert "\x1b]" not in stderr and "\x07" not in stderr and "\x9b" not in stderr


def test_ask_json_is_exact(ingested):
    raw = run("ask", QUESTION, "--json")[0]
    answer = json.loads(raw)
    assert "\x1b" not in raw and "\x9b" not in raw
    quotes = " ".join(c["quote"] for c in answer["citations"])
    assert CLEAR in quotes or OSC_TITLE in quotes or C1_CLEAR in quotes, "the exact document text survives"
    assert any(c["title"] == TITLE for c in answer["citations"])


def test_stats_prints_a_clean_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MULTIGRAIN_HOME", str(tmp_path / f"home{OSC_TITLE}{CLEAR}"))
    stdout, stderr = run("stats")
    assert_clean(stdout + stderr)
    assert f"{tmp_path / 'home'}/chroma" in stdout
    assert json.loads(run("stats", "--json")[0])["chroma"].startswith(str(tmp_path / f"home{OSC_TITLE}"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"a{OSC_TITLE}b", "ab"),
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        (f"a{CLEAR}\x1b[1;31mb\x1b[0m", "ab"),
        (f"a{C1_CLEAR}b\x9d0;t\x9c", "ab"),
        ("tab\tnew\nline\rbell\x07del\x7f\x00", "tab\tnew\nlinebelldel"),
        ("a\x1bcb\x1b(Bc", "abc"),
        ("cut \x1b]0;never ended\nnext line", "cut \nnext line"),
        ("ünïcødé — “quoted” ✓", "ünïcødé — “quoted” ✓"),
    ],
    ids=["osc-bel", "osc-st-link", "csi", "c1", "c0-and-del", "two-char-escapes", "unterminated", "unicode"],
)
def test_terminal_text_removes_sequences_and_controls_but_keeps_text(text, shown):
    assert terminal_text(text) == shown
