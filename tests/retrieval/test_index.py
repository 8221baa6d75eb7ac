"""The Index with real Chroma and the real ONNX model: offsets, re-ingest, crash safety, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from filelock import FileLock

from retrieval.config import IndexConfig
from retrieval.errors import IndexBusyError
from retrieval.index import Index
from retrieval.packs import unpack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def make_index(home: Path, embedder, **overrides) -> Index:
    return Index(IndexConfig(home=home, **overrides), embedder=embedder)


def snapshot(index: Index) -> dict[str, list[tuple[Any, ...]]]:
    """Everything stored but the vectors (the model's last bits depend on what it was batched with),
    comparable across runs."""
    stored: dict[str, list[tuple[Any, ...]]] = {
        name: sorted((r.id, r.text, tuple(sorted(r.metadata.items()))) for r in index.store.iterate(name))
        for name in ("documents", "centroids", "chunks")
    }
    stored["sentences"] = sorted(
        (r.id, s.sentence_id, s.text, s.start, s.end, s.role, s.headers)
        for r in index.store.iterate("sentences")
        for s in unpack(r)
    )
    return stored


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory, embedder):
    home = tmp_path_factory.mktemp("corpus-index")
    index = make_index(home, embedder)
    report = index.ingest([FIXTURES], base=FIXTURES)
    return index, report


def test_ingest_reports_every_document(corpus_index):
    index, report = corpus_index
    assert sorted(report.added) == sorted(
        ["chess.md", "lighthouses.md", "tea.html", "volcanoes.txt", "hubble-constant", "origami", "fibonacci"]
    )
    assert report.failed == []
    stats = index.stats()
    assert stats["documents"] == 7
    assert stats["chunks"] == report.chunks > 0
    assert stats["sentences"] == report.sentences > stats["chunks"]


def test_every_stored_unit_is_an_exact_slice_of_its_document(corpus_index):
    index, _ = corpus_index
    texts = {p.doc_id: index.document(p.doc_id).text for p in index.documents()}
    for record in index.store.iterate("chunks"):
        meta = record.metadata
        assert texts[meta["doc_id"]][meta["start"] : meta["end"]] == record.text


def test_each_sentence_a_chunk_holds_is_stored_once_in_its_document_s_pack(corpus_index):
    index, _ = corpus_index
    chunks = [r.metadata for r in index.store.iterate("chunks")]
    texts = {p.doc_id: index.document(p.doc_id).text for p in index.documents()}
    centroids = {r.id: r.vector for r in index.store.get("centroids", ids=list(texts), with_vectors=True)}
    stored: list[str] = []
    for pack in index.store.get("sentences", ids=[f"{d}#p0" for d in texts], with_vectors=True):
        sentences = unpack(pack)
        assert sentences, f"pack {pack.id} holds no sentence"
        assert pack.id == f"{pack.metadata['doc_id']}#p0"
        np.testing.assert_allclose(pack.vector, centroids[pack.metadata["doc_id"]], atol=1e-6)
        assert [s.start for s in sentences] == sorted(s.start for s in sentences)
        for sentence in sentences:
            stored.append(sentence.sentence_id)
            assert sentence.doc_id == pack.metadata["doc_id"]
            assert texts[sentence.doc_id][sentence.start : sentence.end] == sentence.text
            assert any(
                meta["doc_id"] == sentence.doc_id
                and meta["start"] <= sentence.start <= sentence.end <= meta["end"]
                for meta in chunks
            )
            assert sentence.vector.shape == (index.embedder.dim,)
            assert np.linalg.norm(sentence.vector) == pytest.approx(1.0, abs=1e-4)
    assert index.store.count("sentences") == len(texts)
    assert len(stored) == len(set(stored)) > len(chunks)


def test_profiles_have_summary_keywords_and_centroid(corpus_index):
    index, _ = corpus_index
    tea = index.documents_by_id(["tea.html"])[0]
    sentences = [
        s.text for r in index.store.get("sentences", where={"doc_id": "tea.html"}) for s in unpack(r)
    ]
    assert tea.summary and tea.summary.startswith(tuple(sentences))
    assert "tea" in tea.keywords
    assert index.store.count("centroids") == 7


def test_search_at_each_grain_finds_the_right_document(corpus_index, embedder):
    index, _ = corpus_index
    question = "Which was the last lighthouse in Britain to be automated?"
    vector = embedder.embed_query(question)
    assert index.dense_documents(vector, 1, by="profile")[0].id == "lighthouses.md"
    assert index.dense_documents(vector, 1, by="centroid")[0].id == "lighthouses.md"
    assert index.bm25_documents(question, 1)[0][0] == "lighthouses.md"
    assert index.dense_chunks(vector, 1)[0].doc_id == "lighthouses.md"
    assert index.bm25_chunks(question, 1)[0].doc_id == "lighthouses.md"
    inside = index.dense_chunks(vector, 5, doc_ids=["tea.html", "chess.md"])
    assert inside and {h.doc_id for h in inside} <= {"tea.html", "chess.md"}
    assert {h.doc_id for h in index.bm25_chunks("lighthouse tea", 5, doc_ids=["tea.html"])} == {"tea.html"}


def test_reingest_does_no_embedding_work(tmp_path, embedder):
    index = make_index(tmp_path / "home", embedder)
    index.ingest([FIXTURES], base=FIXTURES)
    before, calls = snapshot(index), embedder.stats.calls
    report = index.ingest([FIXTURES], base=FIXTURES)
    assert embedder.stats.calls == calls
    assert len(report.unchanged) == 7 and not report.added and not report.replaced
    assert snapshot(index) == before


def test_changed_file_replaces_its_entries_and_remove_deletes_everywhere(tmp_path, embedder):
    folder = tmp_path / "docs"
    shutil.copytree(FIXTURES, folder)
    index = make_index(tmp_path / "home", embedder)
    index.ingest([folder], base=folder)
    (folder / "volcanoes.txt").write_text(
        "Volcanoes\n\nA fumarole vents steam and gases. Nothing else remains here.\n"
    )
    report = index.ingest([folder], base=folder)
    assert report.replaced == ["volcanoes.txt"] and len(report.unchanged) == 6
    chunks = index.store.get("chunks", where={"doc_id": "volcanoes.txt"})
    assert [c.text for c in chunks] == [
        "Volcanoes\n\nA fumarole vents steam and gases. Nothing else remains here."
    ]
    assert not index.bm25_chunks("Paricutin cornfield", 5)

    assert index.remove("volcanoes.txt") is True
    for name in ("documents", "centroids", "chunks", "sentences"):
        assert not index.store.get(name, where={"doc_id": "volcanoes.txt"})
    assert not index.bm25_chunks("fumarole", 5)
    assert all(doc != "volcanoes.txt" for doc, _ in index.bm25_documents("fumarole volcanoes", 5))
    assert index.remove("volcanoes.txt") is False


def test_bad_inputs_get_reasons_and_keep_what_is_stored(tmp_path, embedder):
    index = make_index(tmp_path / "home", embedder, max_file_mb=0.01)
    index.ingest([FIXTURES / "chess.md"])
    before = snapshot(index)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_text("")
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (bad / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (bad / "huge.txt").write_text("word " * 5000)
    (bad / "slides.pptx").write_bytes(b"PK\x03\x04")
    (bad / "good.md").write_text("# Kites\n\nA kite is a tethered craft that flies by lift.\n")
    report = index.ingest([bad], base=bad)
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt", "corrupt.pdf", "huge.txt", "slides.pptx"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "PDF" in reasons["corrupt.pdf"]
    assert "limit" in reasons["huge.txt"]
    assert "unsupported" in reasons["slides.pptx"]
    assert report.added == ["good.md"]
    after = snapshot(index)
    for name in before:
        assert set(before[name]) <= set(after[name])


def test_a_second_writer_waits_then_gives_a_clear_error(tmp_path, embedder):
    index = make_index(tmp_path / "home", embedder, lock_timeout_s=0.5)
    messages: list[str] = []
    with FileLock(str(tmp_path / "home" / "write.lock")):
        with pytest.raises(IndexBusyError, match="another multigrain process"):
            index.ingest([FIXTURES / "chess.md"], on_wait=messages.append)
    assert messages and "waiting" in messages[0]
    assert index.ingest([FIXTURES / "chess.md"]).added


INGEST_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from retrieval.config import IndexConfig
    from retrieval.index import Index
    home, folder = Path(sys.argv[1]), Path(sys.argv[2])
    index = Index(IndexConfig(home=home))
    def progress(done, total, path):
        print(done, flush=True)
    index.ingest([folder], base=folder, progress=progress)
    print("finished", flush=True)
    """
)


def _write_corpus(folder: Path, n: int) -> None:
    folder.mkdir()
    topics = ["rivers", "castles", "comets", "orchids", "glaciers", "pianos", "falcons", "bridges"]
    for i in range(n):
        topic = topics[i % len(topics)]
        sentences = " ".join(
            f"Fact {j} about {topic} number {i} is that item {j * i} matters." for j in range(30)
        )
        (folder / f"doc{i:03d}.md").write_text(
            f"# {topic.title()} {i}\n\n{sentences}\n\n## More\n\n{sentences}\n"
        )


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_run(tmp_path, embedder):
    folder = tmp_path / "corpus"
    _write_corpus(folder, 40)
    script = tmp_path / "ingest.py"
    script.write_text(INGEST_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed_home = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(script), str(killed_home), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().isdigit() and int(line) >= 12:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = make_index(killed_home, embedder)
    assert partial.store.count("documents") < 40, "the kill came too late to test anything"

    rerun = subprocess.run(
        [sys.executable, str(script), str(killed_home), str(folder)], capture_output=True, text=True, env=env
    )
    assert rerun.returncode == 0, rerun.stderr
    clean = make_index(tmp_path / "clean", embedder)
    clean.ingest([folder], base=folder)
    assert snapshot(make_index(killed_home, embedder)) == snapshot(clean)
    assert make_index(killed_home, embedder).bm25_chunks("falcons", 50) and len(
        make_index(killed_home, embedder).bm25_chunks("falcons number", 200)
    ) == len(clean.bm25_chunks("falcons number", 200))


@pytest.fixture
def chroma_server(chroma_process):
    _, port = chroma_process
    return port


def test_http_client_mode_against_a_real_chroma_server(tmp_path, embedder, chroma_server):
    index = make_index(tmp_path / "home", embedder, chroma_host="127.0.0.1", chroma_port=chroma_server)
    report = index.ingest([FIXTURES], base=FIXTURES)
    assert len(report.added) == 7
    assert index.stats()["chroma"] == f"http://127.0.0.1:{chroma_server}"
    assert not (tmp_path / "home" / "chroma").exists()
    vector = embedder.embed_query("Who was sent to China to collect tea plants?")
    assert index.dense_chunks(vector, 1)[0].doc_id == "tea.html"
    assert index.ingest([FIXTURES], base=FIXTURES).unchanged
    assert index.remove("tea.html") and index.store.count("documents") == 6


@pytest.mark.parametrize("kind", ["markdown", "html", "pdf", "docx", "txt", "jsonl"])
def test_every_loader_s_units_are_exact_slices_once_stored(tmp_path, embedder, kind):
    from tests.retrieval import test_loaders

    path = getattr(test_loaders, f"write_{kind}")(tmp_path)
    index = make_index(tmp_path / "home", embedder)
    report = index.ingest([path], base=tmp_path)
    assert report.added and not report.failed
    for doc_id in report.added:
        text = index.document(doc_id).text
        chunks = index.store.get("chunks", where={"doc_id": doc_id})
        sentences = [s for r in index.store.get("sentences", where={"doc_id": doc_id}) for s in unpack(r)]
        assert chunks and sentences
        for chunk in chunks:
            assert text[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
        assert all(text[s.start : s.end] == s.text for s in sentences)
        if kind == "pdf":
            assert all("page" in chunk.metadata for chunk in chunks)
