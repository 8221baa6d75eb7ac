"""Fixtures shared by the retrieval tests: a real Chroma server on a free port of 127.0.0.1."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real `chroma run` on a free port of 127.0.0.1, and its process (resumed and ended afterwards)."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    process = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield process, port
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(timeout=20)
