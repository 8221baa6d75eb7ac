"""A long-lived reader sees what other processes wrote, and reads whatever a killed ingestion left behind.

Every writer here is a real second process: the `multigrain` CLI, or a script killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.agent import Agent
from agents.settings import load_settings
from retrieval.config import IndexConfig
from retrieval.index import Index
from tests.retrieval.test_index import _write_corpus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from agents.cli import main; main()"]
LIGHTHOUSE = "Which was the last lighthouse in Britain to be automated?"
TEA = "Who was sent to China by the East India Company in 1848 to collect tea plants?"
NEW_DOC = "Axolotls\n\nThe axolotl is a salamander that keeps its gills for life and regrows lost limbs.\n"
AXOLOTL = "Which salamander regrows lost limbs and keeps its gills?"


def multigrain(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in another process, on the same home."""
    env = {**os.environ, "MULTIGRAIN_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def search_everything(index: Index, embedder, question: str) -> set[str]:
    """The documents every search of the index returns for a question."""
    vector = embedder.embed_query(question)
    found = {h.doc_id for h in index.dense_chunks(vector, 20)}
    found |= {h.doc_id for h in index.bm25_chunks(question, 20)}
    found |= {r.id for r in index.dense_documents(vector, 10, by="profile")}
    found |= {r.id for r in index.dense_documents(vector, 10, by="centroid")}
    found |= {d for d, _ in index.bm25_documents(question, 10)}
    return found


@pytest.fixture
def reader(tmp_path, embedder) -> Index:
    """An index of the fixture corpus that has searched once (its caches are warm)."""
    index = Index(IndexConfig(home=tmp_path / "home"), embedder=embedder)
    index.ingest([FIXTURES], base=FIXTURES)
    assert "lighthouses.md" in search_everything(index, embedder, LIGHTHOUSE)
    return index


def test_a_removal_by_another_process_is_seen_without_error(reader, embedder, tmp_path):
    multigrain(tmp_path / "home", "remove", "lighthouses.md")
    found = search_everything(reader, embedder, LIGHTHOUSE)
    assert found and "lighthouses.md" not in found
    assert "lighthouses.md" not in reader.documents_named_in("the Lighthouses article")
    hits = reader.dense_chunks(embedder.embed_query(LIGHTHOUSE), 20)
    assert len(hits) == min(20, reader.store.count("chunks")), "removed chunks took places in the search"


def test_an_ingestion_by_another_process_is_found(reader, embedder, tmp_path):
    new = tmp_path / "axolotl.md"
    new.write_text(NEW_DOC)
    multigrain(tmp_path / "home", "ingest", str(new))
    vector = embedder.embed_query(AXOLOTL)
    assert reader.dense_chunks(vector, 1)[0].doc_id.endswith("axolotl.md")
    assert reader.bm25_chunks(AXOLOTL, 1)[0].doc_id.endswith("axolotl.md")
    assert reader.dense_documents(vector, 1, by="profile")[0].id.endswith("axolotl.md")


def test_an_agent_keeps_answering_after_another_process_changes_the_store(tmp_path, embedder):
    settings = load_settings({"home": str(tmp_path / "home")})
    index = Index(settings.index, embedder=embedder)
    index.ingest([FIXTURES], base=FIXTURES)
    agent = Agent(settings, index=index)
    assert "lighthouses.md" in {c["doc_id"] for c in agent.ask(LIGHTHOUSE).citations}
    multigrain(tmp_path / "home", "remove", "lighthouses.md")
    after = agent.ask(LIGHTHOUSE)
    assert "lighthouses.md" not in {p["doc_id"] for p in after.retrieved}
    assert "Robert Fortune" in agent.ask(TEA).text


KILLED_INGEST = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from retrieval.config import ChunkingConfig, IndexConfig
    from retrieval.index import Index
    from retrieval.store import ChromaStore

    home, folder, fatal_batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    upsert, batches = ChromaStore.upsert, []

    def upsert_then_die(self, name, **items):
        if name == "documents":
            batches.append(name)
            if len(batches) == fatal_batch:  # this batch's chunks are written, its profiles never are
                os.kill(os.getpid(), signal.SIGKILL)
        return upsert(self, name, **items)

    ChromaStore.upsert = upsert_then_die
    chunking = ChunkingConfig(chunk_tokens=32, overlap_tokens=0)  # small chunks: two batches from few files
    Index(IndexConfig(home=home, chunking=chunking)).ingest([folder], base=folder)
    """
)


@pytest.fixture(scope="module", params=[1, 2], ids=["nothing-whole", "some-whole"])
def killed_home(request, tmp_path_factory) -> Path:
    """A home whose ingestion died by SIGKILL between writing a batch's chunks and its profiles: in the
    first batch (no document is whole) or in the second."""
    root = tmp_path_factory.mktemp("killed")
    folder, home = root / "corpus", root / "home"
    _write_corpus(folder, 6)
    script = root / "ingest.py"
    script.write_text(KILLED_INGEST)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(script), str(home), str(folder), str(request.param)]
    process = subprocess.run(command, env=env, timeout=300)
    assert process.returncode == -signal.SIGKILL
    return home


def test_a_killed_ingestion_leaves_documents_without_profiles(killed_home, embedder):
    index = Index(IndexConfig(home=killed_home), embedder=embedder)
    profiled = {p.doc_id for p in index.documents()}
    chunked = {str(r.metadata["doc_id"]) for r in index.store.iterate("chunks", with_texts=False)}
    assert chunked - profiled, "the kill left no partial document, so the tests below test nothing"


@pytest.mark.parametrize("route", [False, True], ids=["no-route", "route"])
def test_asking_after_a_killed_ingestion_answers_from_whole_documents(killed_home, route):
    env = {**os.environ, "MULTIGRAIN_HOME": str(killed_home), "PYTHONPATH": str(ROOT)}
    flags = [] if route else ["--no-route"]
    result = subprocess.run(
        [*CLI, "ask", "What matters about comets number 2?", "--json", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    index = Index(IndexConfig(home=killed_home))
    profiled = {p.doc_id for p in index.documents()}
    retrieved = {p["doc_id"] for p in json.loads(result.stdout)["retrieved"]}
    assert retrieved <= profiled and bool(retrieved) == bool(profiled)


def test_reads_skip_chunks_whose_document_has_no_profile(killed_home, embedder):
    index = Index(IndexConfig(home=killed_home), embedder=embedder)
    profiled = {p.doc_id for p in index.documents()}
    vector = embedder.embed_query("comets number")
    hits = index.dense_chunks(vector, 200) + index.bm25_chunks("comets number", 200)
    assert {h.doc_id for h in hits} <= profiled and bool(hits) == bool(profiled)
    chunked = {str(r.metadata["doc_id"]) for r in index.store.iterate("chunks", with_texts=False)}
    orphan = sorted(chunked - profiled)
    orphan_hit = index.chunks([f"{orphan[0]}#c0"])
    assert index.sentences_of(orphan_hit) == {orphan_hit[0].chunk_id: []}
    assert index.store.get("chunks", ids=[]) == []
