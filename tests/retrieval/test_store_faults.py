"""A Chroma server that is frozen or gone gives one clear RetrievalError in bounded time, never a hang.

The servers are real: a socket on 127.0.0.1 that accepts and never answers, a closed port, and a real
`chroma run` stopped with SIGSTOP in the middle of a run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.config import IndexConfig
from retrieval.errors import RetrievalError
from retrieval.index import Index
from retrieval.store import ChromaStore
from tests.retrieval.conftest import free_port
from tests.retrieval.test_index import FIXTURES

TIMEOUT_S = 1.0
CLI = [sys.executable, "-c", "from agents.cli import main; main()"]


@pytest.fixture
def frozen_port() -> Iterator[int]:
    """A server on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()


def server_config(tmp_path: Path, port: int) -> IndexConfig:
    home = tmp_path / "home"
    return IndexConfig(home=home, chroma_host="127.0.0.1", chroma_port=port, chroma_timeout_s=TIMEOUT_S)


@pytest.mark.timeout(60)
def test_a_frozen_server_times_out_with_one_clear_line(tmp_path, frozen_port):
    started = time.monotonic()
    with pytest.raises(RetrievalError) as caught:
        ChromaStore(server_config(tmp_path, frozen_port))
    assert time.monotonic() - started < 15 * TIMEOUT_S
    message = str(caught.value)
    assert f"http://127.0.0.1:{frozen_port}" in message
    assert "did not answer within 1s" in message and "MULTIGRAIN_INDEX__CHROMA_TIMEOUT_S" in message
    assert "\n" not in message


@pytest.mark.timeout(60)
def test_a_closed_port_says_the_server_cannot_be_reached(tmp_path):
    port = free_port()
    with pytest.raises(RetrievalError, match=rf"http://127\.0\.0\.1:{port} cannot be reached .*`chroma run`"):
        ChromaStore(server_config(tmp_path, port))


@pytest.mark.timeout(120)
def test_the_cli_reports_a_frozen_server_in_one_line(tmp_path, frozen_port):
    env = {
        **os.environ,
        "MULTIGRAIN_HOME": str(tmp_path / "home"),
        "MULTIGRAIN_CHROMA_HOST": "127.0.0.1",
        "MULTIGRAIN_CHROMA_PORT": str(frozen_port),
        "MULTIGRAIN_INDEX__CHROMA_TIMEOUT_S": str(TIMEOUT_S),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run([*CLI, "docs"], capture_output=True, text=True, env=env, timeout=100)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{frozen_port} did not answer within 1s" in lines[0]


@pytest.mark.timeout(180)
def test_a_server_frozen_mid_run_gives_a_retrieval_error(tmp_path, embedder, chroma_process):
    process, port = chroma_process
    index = Index(server_config(tmp_path, port), embedder=embedder)
    index.ingest([FIXTURES / "tea.html"])
    vector = embedder.embed_query("Who collected tea plants in China?")
    assert index.dense_chunks(vector, 1)
    process.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(RetrievalError, match=rf"http://127\.0\.0\.1:{port} did not answer within 1s"):
        index.dense_chunks(vector, 1)
    assert time.monotonic() - started < 15 * TIMEOUT_S
    process.send_signal(signal.SIGCONT)
    assert index.dense_chunks(vector, 1), "the index works again once the server answers"
