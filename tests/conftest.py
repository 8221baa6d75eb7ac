"""Shared fixtures: no network beyond 127.0.0.1, a data home in tmp_path, one embedding model per session.

In CI (``CI=true``) a skipped test marked ``browser`` or ``llm_server`` fails: those suites skip when their
tools are missing, and CI must prove it has the tools rather than pass without running them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect
CI_REQUIRED_MARKERS = ("browser", "llm_server")


def _is_local(address: Any) -> bool:
    if isinstance(address, str):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise ConnectionRefusedError(f"tests may not reach {address!r}: only 127.0.0.1 is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIGRAIN_HOME", str(tmp_path / "home"))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MULTIGRAIN_CHROMA_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real ONNX MiniLM, loaded once for the whole run."""
    from retrieval.config import EmbeddingConfig
    from retrieval.embeddings import OnnxEmbedder

    return OnnxEmbedder(EmbeddingConfig())


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With CI=true, a skip of a test that CI must run (marked browser or llm_server) becomes a failure."""
    report = yield
    if not (report.skipped and _in_ci()) or hasattr(report, "wasxfail"):
        return report
    required = [name for name in CI_REQUIRED_MARKERS if item.get_closest_marker(name)]
    if required:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI (CI=true), where tests marked {' or '.join(required)} must run: "
            f"{_skip_reason(report)}"
        )
    return report
