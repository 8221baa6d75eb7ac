"""The conversation: which questions are rewritten from the thread, and turns that are never lost.

End to end over the demo corpus with the real ONNX model, Chroma and the SQLite checkpointer; the LLM path
against the scripted OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.agent import Agent, Answer
from agents.cli import app
from agents.nodes._followup import needs_thread, offline_standalone
from agents.settings import load_settings
from prompts import render
from retrieval.embeddings import Embedder
from retrieval.index import Index
from retrieval.urls import redact_url
from tests.agents.test_agent_llm import prompt_of
from tests.openai_server import Reply, ScriptedOpenAI

JWST = "At what temperature does the JWST's MIRI instrument operate?"
JWST_DOC = "james_webb_space_telescope.md"
ROSETTA_DOC = "rosetta_stone.html"
SELF_CONTAINED = [
    "Who deciphered the hieroglyphs?",
    "What is the best-known sourdough bacterium?",
    "Where was the Rosetta Stone found and who deciphered it?",
    "How does the telescope keep its mirror cold?",
    "What is the enzyme that bees use?",
    "Are there bees in winter?",
    "Who was Champollion?",
]
FOLLOW_UPS = [
    "How cold is it kept?",
    "And its mirror?",
    "And in 2022?",
    "What about honeybees?",
    "Why?",
    "The mirror?",
    "What is the size of its mirror?",
    "When did that happen?",
    "What happens there?",
]


def _citations(answer: Answer) -> set[str]:
    return {c["doc_id"] for c in answer.citations}


def _standalone(answer: Answer) -> str | None:
    return next((v["text"] for v in answer.variants if v["kind"] == "standalone"), None)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-home")


@pytest.fixture(scope="module")
def demo_index(demo_home: Path, embedder: Embedder) -> Index:
    index = Index(load_settings({"home": str(demo_home)}).index, embedder=embedder)
    with as_file(files("retrieval") / "data" / "demo") as folder:
        report = index.ingest([Path(folder)], base=Path(folder))
    assert not report.failed, report.failed
    return index


@pytest.fixture
def agent(demo_index: Index, tmp_path: Path) -> Agent:
    return Agent(load_settings({"home": str(tmp_path)}), index=demo_index)


@pytest.mark.parametrize("question", SELF_CONTAINED)
def test_a_self_contained_question_does_not_need_the_thread(question):
    assert not needs_thread(question)
    assert offline_standalone(question, [{"question": JWST, "answer": "Below 7 kelvin."}]) == question


@pytest.mark.parametrize("question", FOLLOW_UPS)
def test_a_follow_up_needs_the_thread(question):
    assert needs_thread(question)


def test_offline_rewrites_take_the_subject_for_a_pronoun_and_the_predicate_for_an_ellipsis():
    history = [{"question": "How heavy is the Rosetta Stone?", "answer": "About 760 kilograms."}]
    assert offline_standalone("Where is it kept?", history) == "Where is it kept? (rosetta stone)"
    assert offline_standalone("What about the sphinx?", history) == "What about the sphinx? (heavy)"
    thread = [
        {"question": JWST, "answer": "Below 7 kelvin."},
        {"question": "How cold is it kept?", "answer": "Very cold."},
    ]
    assert offline_standalone("And its mirror?", thread) == "And its mirror? (jwst)"


def test_a_new_topic_after_a_jwst_question_cites_its_own_document(agent):
    first = agent.ask(JWST)
    assert JWST_DOC in _citations(first)
    answer = agent.ask("Who deciphered the hieroglyphs?", thread_id=first.thread_id)
    assert _standalone(answer) is None
    assert ROSETTA_DOC in _citations(answer)
    assert JWST_DOC not in _citations(answer)
    assert "hieroglyph" in answer.text.lower()


@pytest.mark.parametrize("question", ["How cold is it kept?", "And its mirror?"])
def test_a_genuine_follow_up_still_uses_the_thread(agent, question):
    first = agent.ask(JWST)
    answer = agent.ask(question, thread_id=first.thread_id)
    standalone = _standalone(answer)
    assert standalone is not None and "jwst" in standalone.lower()
    assert answer.passages[0]["doc_id"] == JWST_DOC
    assert _citations(answer) == {JWST_DOC}


def test_and_its_mirror_quotes_the_mirror(agent):
    first = agent.ask(JWST)
    answer = agent.ask("And its mirror?", thread_id=first.thread_id)
    assert "mirror" in answer.text.lower()


def test_ten_concurrent_asks_on_one_thread_keep_ten_turns(agent):
    thread = agent.ask(JWST).thread_id
    questions = [f"Question {n}: how much gold is on the mirror?" for n in range(10)]
    barrier = threading.Barrier(len(questions))
    errors: list[BaseException] = []

    def ask(question: str) -> None:
        barrier.wait()
        try:
            agent.ask(question, thread_id=thread)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors, errors
    history = agent.history(thread)
    assert len(history) == 11
    assert sorted(turn["question"] for turn in history[1:]) == sorted(questions)


def test_the_standalone_prompt_keeps_a_self_contained_question_unchanged():
    system = render("standalone", conversation="Q: a\nA: b", question="c")[0]["content"]
    assert "return it unchanged" in system


def _scripted_model(body: dict[str, Any]) -> Reply | str:
    if prompt_of(body) == "standalone":
        return json.dumps({"question": "How cold is the James Webb Space Telescope kept?"})
    return Reply(content="The documents do not answer this question.")


@pytest.mark.parametrize(
    ("question", "rewritten"),
    [("Who deciphered the hieroglyphs?", False), ("How cold is it kept?", True)],
)
def test_the_model_is_asked_to_rewrite_only_a_question_that_needs_the_thread(
    demo_index, tmp_path, question, rewritten
):
    with ScriptedOpenAI(_scripted_model) as server:
        llm = {"base_url": server.base_url, "model": "m", "backoff_s": 0.01, "timeout_s": 5}
        settings = {
            "home": str(tmp_path),
            "llm": llm,
            "expand": {"rewrites": 0, "pseudo_docs": 0},
            "rerank": {"enabled": False},
            "verify": {"llm_judge": False},
        }
        agent = Agent(load_settings(settings), index=demo_index)
        first = agent.ask(JWST)
        asked = len(server.requests)
        answer = agent.ask(question, thread_id=first.thread_id)
        standalone_requests = [b for b in server.requests[asked:] if prompt_of(b) == "standalone"]
    assert len(standalone_requests) == int(rewritten)
    expected = "How cold is the James Webb Space Telescope kept?" if rewritten else None
    assert _standalone(answer) == expected


SECRET = "sk-in-the-userinfo"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:sk-1@h/v1", "http://user:***@h/v1"),
        ("http://sk-1@h:8080/v1", "http://***@h:8080/v1"),
        ("https://h/v1?api_key=sk-1&x=2#sk-2", "https://h/v1?api_key=***&x=***#***"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_redact_url_masks_every_place_a_key_can_hide(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("status", [200, 400], ids=["answered", "every-call-fails"])
def test_a_key_in_the_base_url_is_masked_in_json_output_and_the_stored_conversation(
    demo_index, demo_home, status
):
    def model(body: dict[str, Any]) -> Reply | str:
        return _scripted_model(body) if status == 200 else Reply(status=status, error="scripted failure")

    home = demo_home
    with ScriptedOpenAI(model) as server:
        shown = server.base_url.replace("http://", "http://user:***@")
        url = server.base_url.replace("http://", f"http://user:{SECRET}@")
        result = CliRunner().invoke(
            app,
            ["ask", "--json", "--base-url", url, "--model", "m", JWST],
            env={"MULTIGRAIN_HOME": str(home), "MULTIGRAIN_LLM__BACKOFF_S": "0.01"},
        )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["mode"] == f"llm: m at {shown}"
    assert (shown in json.dumps(answer["trace"])) == (status != 200)
    stored = b"".join(path.read_bytes() for path in home.glob("conversations.sqlite*"))
    assert b"checkpoints" in stored
    assert SECRET not in result.output
    assert SECRET.encode() not in stored
