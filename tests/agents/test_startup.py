"""The ``multigrain`` command starts without loading LangGraph, the OpenAI SDK, Chroma or onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("langgraph", "openai", "chromadb", "onnxruntime")


def loaded_after(code: str, *, modules: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None) -> list:
    """Which of ``modules`` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    argv = [sys.executable, "-c", probe]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout.splitlines()[-1])


def cli_code(*args: str) -> str:
    """Code running ``multigrain ARGS`` as the console script does."""
    return (
        f"import sys\nfrom agents.cli import main\nsys.argv = ['multigrain', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"
    )


@pytest.mark.parametrize(
    "code",
    [
        "import agents.cli",
        "import agents",
        "from agents import load_settings, Settings; load_settings(environ={})",
    ],
)
def test_starting_the_cli_and_loading_settings_import_no_heavy_library(code):
    assert loaded_after(code) == []


def test_the_public_names_still_import_from_the_package():
    import agents

    for name in agents.__all__:
        assert getattr(agents, name).__name__ == name
    assert "Agent" in dir(agents)
    with pytest.raises(AttributeError, match="no attribute 'Agnet'"):
        agents.Agnet  # noqa: B018


def test_help_lists_every_command_without_loading_them():
    assert loaded_after(cli_code("--help")) == []
    assert loaded_after(cli_code("ask", "--help")) == []


@pytest.mark.parametrize("command", ["docs", "stats"])
def test_listing_the_index_loads_neither_langgraph_nor_the_embedding_model(command, tmp_path):
    env = {**os.environ, "MULTIGRAIN_HOME": str(tmp_path)}
    code = cli_code(command) + "\nfrom retrieval.embeddings import OnnxEmbedder"
    code += "\nassert not any(isinstance(o, OnnxEmbedder) for o in __import__('gc').get_objects())"
    assert loaded_after(code, modules=("langgraph", "langchain_core"), env=env) == []


LAZY_LIBRARIES = ("onnxruntime", "openai", "tokenizers", "bs4", "docx", "pypdfium2", "bm25s", "tiktoken")


def test_retrieval_modules_load_their_heavy_libraries_only_when_used():
    modules = ("embeddings", "loaders", "lexical", "tokens", "chunking", "catalog")
    code = "\n".join(f"import retrieval.{name}" for name in modules)
    assert loaded_after(code, modules=LAZY_LIBRARIES) == []


@pytest.mark.parametrize("command", ["docs", "stats"])
@pytest.mark.parametrize("ingested", [False, True], ids=["empty-home", "current-catalog"])
def test_listing_the_index_from_its_catalog_loads_no_heavy_library(command, ingested, tmp_path, embedder):
    from retrieval.config import IndexConfig
    from retrieval.index import Index

    home = tmp_path / "home"
    if ingested:
        Index(IndexConfig(home=home), embedder=embedder).ingest([ROOT / "tests" / "fixtures" / "corpus"])
    env = {**os.environ, "MULTIGRAIN_HOME": str(home)}
    assert loaded_after(cli_code(command, "--json"), modules=(*HEAVY, *LAZY_LIBRARIES), env=env) == []
