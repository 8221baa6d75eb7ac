"""`multigrain docs` and `stats` answer from the catalog the writer leaves, exactly as Chroma would, and only
while it is current: other processes' writes update it, half-done writes and a Chroma server bypass it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import app
from retrieval import catalog
from retrieval.catalog import CATALOG_FILE, current_catalog
from retrieval.config import IndexConfig
from retrieval.index import Index
from retrieval.ingest import Ingester
from retrieval.journal import JOURNAL_FILE, Journal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
ROOT = Path(__file__).resolve().parents[2]
NEW_DOC = "Axolotls\n\nThe axolotl is a salamander that keeps its gills for life and regrows lost limbs.\n"
LISTINGS = (["docs", "--json"], ["stats", "--json"], ["docs"], ["stats"])

runner = CliRunner()


def printed(home: Path) -> dict[str, str]:
    """What each listing command prints for ``home``."""
    outputs = {}
    for args in LISTINGS:
        result = runner.invoke(app, args, env={"MULTIGRAIN_HOME": str(home)})
        assert result.exit_code == 0, result.output
        outputs[" ".join(args)] = result.stdout
    return outputs


def multigrain(home: Path, *args: str) -> None:
    """The CLI in another process, on the same home."""
    env = {**os.environ, "MULTIGRAIN_HOME": str(home), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from agents.cli import main; main()", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


def from_the_store(home: Path) -> list[str]:
    """Doc ids a freshly opened index lists, straight from Chroma."""
    return [p.doc_id for p in Index(IndexConfig(home=home)).documents()]


@pytest.fixture
def home(tmp_path, embedder) -> Path:
    """A home with the fixture corpus ingested by this process."""
    home = tmp_path / "home"
    Index(IndexConfig(home=home), embedder=embedder).ingest([FIXTURES], base=FIXTURES)
    return home


def test_the_catalog_and_chroma_print_the_same_listings(home):
    assert current_catalog(IndexConfig(home=home)) is not None
    from_catalog = printed(home)
    (home / CATALOG_FILE).unlink()  # as an index written before catalogs existed
    assert current_catalog(IndexConfig(home=home)) is None
    from_chroma = printed(home)
    assert from_catalog == from_chroma
    assert '"doc_id": "lighthouses.md"' in from_catalog["docs --json"]
    assert '"documents": 7' in from_catalog["stats --json"]


def test_an_empty_home_lists_the_same_before_and_after_chroma_is_created(tmp_path):
    home = tmp_path / "fresh"
    before = printed(home)
    assert not (home / "chroma").exists()
    Index(IndexConfig(home=home))
    assert current_catalog(IndexConfig(home=home)) is None
    assert printed(home) == before
    assert "The index is empty" in before["docs"]


def test_removals_and_ingestions_by_other_processes_update_the_catalog(home, tmp_path):
    config = IndexConfig(home=home)
    multigrain(home, "remove", "lighthouses.md")
    listed = current_catalog(config)
    assert listed is not None
    assert [p.doc_id for p in listed.profiles] == from_the_store(home)
    assert "lighthouses.md" not in [p.doc_id for p in listed.profiles]
    new = tmp_path / "axolotl.md"
    new.write_text(NEW_DOC)
    multigrain(home, "ingest", str(new))
    listed = current_catalog(config)
    assert listed is not None
    assert [p.doc_id for p in listed.profiles] == from_the_store(home)
    assert any(p.doc_id.endswith("axolotl.md") for p in listed.profiles)
    assert catalog.describe(config, listed.counts) == Index(config).stats()


def test_a_pending_journal_entry_sends_the_listing_to_chroma(home):
    config = IndexConfig(home=home)
    Journal(home / JOURNAL_FILE).begin(["lighthouses.md"])  # as a write killed half-way leaves it
    assert current_catalog(config) is None
    assert [p.doc_id for p in catalog.documents(config)] == from_the_store(home)


def test_a_write_that_dies_before_the_catalog_is_saved_leaves_no_stale_catalog(
    home, tmp_path, embedder, monkeypatch
):
    def die(self: Ingester) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(Ingester, "_publish", die)
    new = tmp_path / "axolotl.md"
    new.write_text(NEW_DOC)
    with pytest.raises(RuntimeError, match="killed"):
        Index(IndexConfig(home=home), embedder=embedder).ingest([new])
    config = IndexConfig(home=home)
    assert current_catalog(config) is None
    assert any(p.doc_id.endswith("axolotl.md") for p in catalog.documents(config))


def test_a_catalog_of_another_marker_is_not_used(home):
    (home / "bm25" / "fingerprint").write_text("another")  # an older version's writer changed the store
    assert current_catalog(IndexConfig(home=home)) is None


def test_a_chroma_server_is_always_asked(home):
    assert current_catalog(IndexConfig(home=home, chroma_host="127.0.0.1")) is None
