"""The ``multigrain`` command through Typer's CliRunner, on a real index in tmp_path and the offline agent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import DEMO_QUESTIONS, app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
CORPUS_IDS = sorted(
    [
        (FIXTURES / name).resolve().as_posix()
        for name in ("chess.md", "lighthouses.md", "tea.html", "volcanoes.txt")
    ]
    + [
        f"{(FIXTURES / 'extra.jsonl').resolve().as_posix()}#{_id}"
        for _id in ("hubble-constant", "origami", "fibonacci")
    ]
)
LIGHTHOUSES_ID = (FIXTURES / "lighthouses.md").resolve().as_posix()
STEPS = ["expand", "route", "retrieve", "rerank", "answer", "verify"]
LIGHTHOUSE_QUESTION = "Which was the last lighthouse in Britain to be automated?"

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory):
    """A home with the fixture corpus ingested once through the CLI, and that first run's JSON report."""
    home = tmp_path_factory.mktemp("cli-corpus")
    result = runner.invoke(app, ["ingest", str(FIXTURES), "--json"], env={"MULTIGRAIN_HOME": str(home)})
    assert result.exit_code == 0, result.output
    return home, json.loads(result.stdout)


@pytest.fixture
def corpus(corpus_home, monkeypatch):
    home, report = corpus_home
    monkeypatch.setenv("MULTIGRAIN_HOME", str(home))
    return report


def ask_json(*args: str) -> dict:
    result = runner.invoke(app, ["ask", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_adds_every_document_with_ids_by_location(corpus):
    assert sorted(corpus["added"]) == CORPUS_IDS
    assert corpus["failed"] == [] and corpus["chunks"] > 0


def test_reingest_reports_everything_unchanged_and_shows_progress(corpus):
    result = runner.invoke(app, ["ingest", str(FIXTURES)])
    assert result.exit_code == 0, result.output
    assert "added: 0  unchanged: 7  replaced: 0  failed: 0" in result.stdout
    assert "5/5" in result.stderr


def test_ingest_reports_bad_files_keeps_good_ones_and_exits_1(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(FIXTURES / "volcanoes.txt", folder)
    (folder / "empty.txt").write_text("")
    (folder / "notes.xyz").write_text("some notes")
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 1
    assert "added: 1" in result.stdout and "failed: 2" in result.stdout
    assert f"{folder / 'empty.txt'}: empty file" in result.stdout
    assert f"{folder / 'notes.xyz'}: unsupported file type '.xyz'" in result.stdout
    listed = json.loads(runner.invoke(app, ["docs", "--json"]).stdout)
    assert [d["doc_id"] for d in listed] == [(folder / "volcanoes.txt").resolve().as_posix()]


def test_ingest_of_a_missing_path_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere'}: no such file or folder"


def test_docs_lists_the_documents(corpus):
    listed = json.loads(runner.invoke(app, ["docs", "--json"]).stdout)
    assert sorted(d["doc_id"] for d in listed) == CORPUS_IDS
    by_id = {d["doc_id"]: d for d in listed}
    assert by_id[LIGHTHOUSES_ID]["title"] == "A Short History of Lighthouses"
    assert by_id[LIGHTHOUSES_ID]["chunks"] > 0 and "lighthouses" in by_id[LIGHTHOUSES_ID]["keywords"]
    table = runner.invoke(app, ["docs"]).stdout.splitlines()
    assert table[0].split() == ["doc_id", "title", "chunks", "pages", "keywords"]
    row = next(line for line in table if line.startswith(LIGHTHOUSES_ID))
    assert "A Short History of Lighthouses" in row


def test_stats_counts_what_was_ingested(corpus):
    counts = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert counts["documents"] == 7
    assert counts["chunks"] == corpus["chunks"]
    assert counts["sentences"] == corpus["sentences"]


def test_remove_deletes_a_document_and_a_second_remove_fails(tmp_path):
    assert runner.invoke(app, ["ingest", str(FIXTURES / "volcanoes.txt")]).exit_code == 0
    doc_id = json.loads(runner.invoke(app, ["docs", "--json"]).stdout)[0]["doc_id"]
    assert doc_id == (FIXTURES / "volcanoes.txt").resolve().as_posix()
    first = runner.invoke(app, ["remove", doc_id])
    assert first.exit_code == 0 and f"removed {doc_id}" in first.stdout
    assert json.loads(runner.invoke(app, ["stats", "--json"]).stdout)["documents"] == 0
    second = runner.invoke(app, ["remove", doc_id])
    assert second.exit_code == 1
    assert second.stderr.strip() == f"error: no document {doc_id!r} in the index (see `multigrain docs`)"


def test_ask_json_cites_the_retrieved_passage_that_answers(corpus):
    answer = ask_json(LIGHTHOUSE_QUESTION)
    assert "North Foreland" in answer["text"]
    retrieved = {p["chunk_id"] for p in answer["retrieved"]}
    assert answer["citations"] and all(c["chunk_id"] in retrieved for c in answer["citations"])
    assert LIGHTHOUSES_ID in {c["doc_id"] for c in answer["citations"]}
    assert answer["mode"] == "offline"


def test_ask_streams_steps_then_answer_sources_notices_and_thread(corpus):
    result = runner.invoke(app, ["ask", LIGHTHOUSE_QUESTION, "--thread", "t-1", "--show-trace"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    order = [out.index(part) for part in ("North Foreland", "Sources", "offline mode", "thread: t-1")]
    assert order == sorted(order)
    assert '[1] A Short History of Lighthouses — supported — "' in out
    step_lines = [line for line in result.stderr.splitlines() if line[:2] in ("✓ ", "! ", "– ")]
    assert [line.split()[1] for line in step_lines] == STEPS
    trace = json.loads(result.stderr[result.stderr.index("\n[") :])
    assert [entry["step"] for entry in trace] == STEPS


def test_no_route_skips_the_route_step(corpus):
    answer = ask_json(LIGHTHOUSE_QUESTION, "--no-route", "--k", "6")
    route = next(entry for entry in answer["trace"] if entry["step"] == "route")
    assert route["skipped"] is True
    assert 0 < len(answer["retrieved"]) <= 6


def test_demo_ingests_the_bundled_corpus_and_suggests_questions(monkeypatch):
    # Few chunks, no sentence vectors, short model inputs: the demo's wiring is under test, not embedding.
    monkeypatch.setenv("MULTIGRAIN_INDEX__EMBED_SENTENCES", "false")
    monkeypatch.setenv("MULTIGRAIN_INDEX__CHUNKING__CHUNK_TOKENS", "2000")
    monkeypatch.setenv("MULTIGRAIN_INDEX__EMBEDDING__MAX_TOKENS", "32")
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "added: 8" in result.stdout
    for question in DEMO_QUESTIONS:
        assert f'multigrain ask "{question}"' in result.stdout
    assert "streamlit run app.py" in result.stdout
    listed = json.loads(runner.invoke(app, ["docs", "--json"]).stdout)
    assert "james_webb_space_telescope.md" in {d["doc_id"] for d in listed}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["ask"], "--k <int> Chunks handed to rerank. (retrieve.k, default 20)"),
        (["ask"], "--no-route Skip the route stage: search the whole corpus (route.enabled=false)."),
        (["ask"], "--no-expand Skip the expand stage (expand.enabled=false)."),
        (["ask"], "--json Print only the answer as JSON."),
        (["ask"], "--base-url <str> OpenAI-compatible API base URL, e.g. http://127.0.0.1:8080/v1;"),
        (["eval"], "--model <str> Model name sent with every request. (llm.model, default gpt-4o-mini)"),
        (["eval"], "--max-queries"),
        (["bench", "ingest"], "--max-docs"),
        (["bench", "ingest"], "Time each side this many times and keep the fastest (best of N)."),
        (["bench", "query"], "--sizes"),
    ],
)
def test_help_shows_flags_and_setting_descriptions(command, expected):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert expected in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (
            ["ask", "anything", "--route-min", "9", "--route-max", "3"],
            1,
            "error: invalid settings: route: Value error, route.min_docs (9) must not exceed route.max_docs",
        ),
        (["eval", ".", "--ablate", "route,colour"], 1, "error: cannot ablate 'colour': stages that can be"),
        (["ask", "   "], 2, "Invalid value for QUESTION: the question is empty"),
        (["bench", "query", "--sizes", "1000,lots"], 2, "whole numbers separated by commas, got '1000,lots'"),
    ],
)
def test_bad_input_is_a_short_message_not_a_traceback(args, exit_code, message):
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == exit_code
    assert message in result.stderr
    assert isinstance(result.exception, SystemExit)  # a handled exit, not an escaped exception
