"""Evaluation is a client of the agent: it uses the public API only, and owns its dataset error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

import retrieval.errors
from agents import MultigrainError
from agents.cli import app
from evaluation.errors import DatasetError

EVALUATION = Path(__file__).resolve().parents[2] / "evaluation"
MODULES = sorted(EVALUATION.glob("*.py"))
# The index's result and input types, the loaders that read a corpus (and their LoaderError), the embedder
# the index takes, and the pure fusion functions the hybrid baseline shares with the agent.
PUBLIC_RETRIEVAL = {
    "retrieval.index",
    "retrieval.models",
    "retrieval.loaders",
    "retrieval.errors",
    "retrieval.embeddings",
    "retrieval.fusion",
}
# The query benchmark writes its synthetic corpus straight into the store in the index's record layout.
SYNTHETIC_WRITER = {"retrieval.store", "retrieval.ids", "retrieval.packs"}


def first_party_imports(path: Path) -> set[str]:
    """The agents and retrieval modules ``path`` imports from."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in {"agents", "retrieval"}}


def private_attributes(path: Path) -> list[str]:
    """``obj._name`` accesses in ``path`` on anything but ``self``, as ``line: expression``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_every_evaluation_module_is_checked():
    stems = {path.stem for path in MODULES}
    assert stems >= {"runner", "metrics", "datasets", "baselines", "bench", "report", "errors"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_the_agent_is_reached_only_through_the_agents_package(path):
    reached = {name for name in first_party_imports(path) if name.split(".")[0] == "agents"}
    assert reached <= {"agents"}, f"{path.name} imports agents internals: {sorted(reached - {'agents'})}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_retrieval_is_reached_only_through_the_index_and_its_types(path):
    allowed = PUBLIC_RETRIEVAL | (SYNTHETIC_WRITER if path.stem == "bench" else set())
    reached = {name for name in first_party_imports(path) if name.split(".")[0] == "retrieval"}
    assert reached <= allowed, f"{path.name} imports retrieval internals: {sorted(reached - allowed)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_no_private_attribute_of_another_object_is_used(path):
    assert private_attributes(path) == []


def test_dataset_error_belongs_to_evaluation_and_is_a_multigrain_error():
    assert issubclass(DatasetError, MultigrainError)
    assert not hasattr(retrieval.errors, "DatasetError")


def test_a_malformed_dataset_is_a_one_line_cli_error(tmp_path):
    dataset = tmp_path / "broken"
    dataset.mkdir()
    (dataset / "corpus.jsonl").write_text('{"_id": "d1", "text": "Some text."}\n', encoding="utf-8")
    (dataset / "queries.jsonl").write_text("{not json\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["eval", str(dataset)], env={"MULTIGRAIN_HOME": str(tmp_path / "home")})

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {dataset / 'queries.jsonl'} line 1: invalid JSON")
    assert result.stderr.count("\n") == 1
    assert isinstance(result.exception, SystemExit)
