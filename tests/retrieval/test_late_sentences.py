"""Sentence vectors pooled from their chunk's own pass ('late'), the window limits, and the backends that
cannot pool ('openai'), which keep embedding sentences separately."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.config import ChunkingConfig, EmbeddingConfig, IndexConfig
from retrieval.embeddings import OnnxEmbedder, OpenAIEmbedder, SpanEmbedder
from retrieval.index import Index
from retrieval.ingest import embedding_text
from retrieval.models import Document
from retrieval.packs import unpack
from tests.http_servers import ScriptedServer
from tests.retrieval.test_embeddings import FAKE_MODEL, _embeddings_endpoint

TITLE = "Rosetta Stone"
TEXT = (
    "The Rosetta Stone is a granodiorite stele found in 1799 near the town of Rashid. "
    "It weighs roughly 760 kilograms and stands over a metre tall. "
    "Its three scripts made the decipherment of hieroglyphs possible."
)


def _index(home: Path, embedder: Any, **overrides: Any) -> Index:
    return Index(IndexConfig(home=home, **overrides), embedder=embedder)


def _stored_sentences(index: Index) -> dict[str, np.ndarray]:
    return {
        s.text: s.vector for r in index.store.get("sentences", where={"doc_id": "stone"}) for s in unpack(r)
    }


def _counts(embedder: OnnxEmbedder) -> tuple[int, int, int]:
    return embedder.stats.texts, embedder.stats.late_spans, embedder.stats.span_passes


def test_spans_are_pooled_from_the_texts_own_pass(embedder: OnnxEmbedder) -> None:
    text = f"{TITLE}\n{TEXT}"
    second = (text.index("It weighs"), text.index("tall.") + len("tall."))
    texts_before = embedder.stats.texts
    vectors, spans = embedder.embed_spans([text], [[second]])
    assert embedder.stats.texts - texts_before == 1
    np.testing.assert_allclose(vectors[0], embedder.embed_documents([text])[0], atol=1e-5)
    assert spans[0].shape == (1, embedder.dim)
    assert np.linalg.norm(spans[0][0]) == pytest.approx(1.0, abs=1e-5)
    alone = embedder.embed_query(text[slice(*second)])
    # The sentence read in context is still close to itself alone, and closer to its subject than alone.
    assert float(spans[0][0] @ alone) > 0.6
    subject = embedder.embed_query("How heavy is the Rosetta Stone?")
    assert float(spans[0][0] @ subject) > float(alone @ subject)


def test_a_span_is_the_mean_of_the_states_of_the_word_pieces_it_touches(embedder: OnnxEmbedder) -> None:
    text = f"{TITLE}\n{TEXT}"
    second = text.index("It weighs")
    # A sentence, the title, and a span that starts inside a word and overlaps the first two.
    spans = [(second, text.index("tall.") + len("tall.")), (0, len(TITLE)), (3, second + 4)]
    _, (pooled,) = embedder.embed_spans([text], [spans])
    encoding = embedder._tokenizer.encode(text)
    hidden, _ = embedder._run_batch([encoding.ids])
    for (start, end), vector in zip(spans, pooled, strict=True):
        touched = [
            i
            for i, (first, last) in enumerate(encoding.offsets)
            if not encoding.special_tokens_mask[i] and first < end and last > start
        ]
        mean = hidden[0, touched].mean(axis=0)
        np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=1e-5)


def test_a_span_past_the_window_gets_its_own_pass(embedder: OnnxEmbedder) -> None:
    filler = " ".join(["granite"] * 300)
    tail = "The stele now stands in the British Museum."
    text = f"{TEXT} {filler} {tail}"
    head, last = (0, TEXT.index("1799") + 4), (text.index(tail), len(text))
    texts, late, passes = _counts(embedder)
    _, spans = embedder.embed_spans([text], [[head, last]])
    assert _counts(embedder) == (texts + 2, late + 1, passes + 1)
    np.testing.assert_allclose(spans[0][1], embedder.embed_query(tail), atol=1e-5)
    assert float(spans[0][0] @ embedder.embed_query(text[slice(*head)])) < 0.999


def test_span_lists_must_match_texts(embedder: OnnxEmbedder) -> None:
    with pytest.raises(ValueError, match="2 texts but 1 span lists"):
        embedder.embed_spans(["a", "b"], [[(0, 1)]])


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_ingest_embeds_sentences_per_setting(tmp_path: Path, embedder: OnnxEmbedder, mode: str) -> None:
    index = _index(tmp_path, embedder, sentence_vectors=mode)
    texts, late, passes = _counts(embedder)
    index.ingest_documents([Document(doc_id="stone", title=TITLE, text=TEXT, source="test")])
    counts = _counts(embedder)
    stored = _stored_sentences(index)
    assert len(stored) == 3
    separate = embedder.embed_documents(list(stored))
    closeness = [float(stored[t] @ v) for t, v in zip(stored, separate, strict=True)]
    if mode == "late":
        # One pass over the chunk, then the profile's summary sentences (all three here) read alone.
        assert counts == (texts + 1 + 3, late + 3, passes)
        assert all(0.6 < c < 0.999 for c in closeness)
    else:
        assert counts == (texts + 4, late, passes)
        assert closeness == pytest.approx([1.0] * 3, abs=1e-5)


def test_late_profiles_average_the_summary_sentences_read_alone(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    """A pooled sentence leans towards its chunk, so when the summary has a sentence in every chunk (here
    the one chunk) a profile averaged from pooled vectors would be the centroid again; the profile is the
    mean of the summary sentences read alone, as in separate mode."""
    document = Document(doc_id="stone", title=TITLE, text=TEXT, source="test")
    profiles = {}
    for mode in ("late", "separate"):
        index = _index(tmp_path / mode, embedder, sentence_vectors=mode)
        index.ingest_documents([document])
        (record,) = index.store.get("documents", ids=["stone"], with_vectors=True)
        profiles[mode] = np.asarray(record.vector)
        if mode == "late":
            pooled = np.stack(list(_stored_sentences(index).values())).mean(axis=0)
            pooled /= np.linalg.norm(pooled)
    np.testing.assert_allclose(profiles["late"], profiles["separate"], atol=1e-5)
    assert float(profiles["late"] @ pooled) < 0.999


def test_a_summary_from_some_of_many_chunks_keeps_its_pooled_profile(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    """Where the summary picks sentences from a few of a document's chunks, the pooled profile differs
    from the centroid already, and no sentence is read a second time."""
    topics = ["granite", "hieroglyphs", "museum", "decipherment", "Ptolemy", "Champollion", "Rashid"]
    text = " ".join(
        f"Paragraph {n} tells of the {topic}, and of the scholars who studied the {topic} for years."
        for n, topic in enumerate(topics * 3)
    )
    config = ChunkingConfig(chunk_tokens=40, overlap_tokens=0)
    index = _index(tmp_path, embedder, sentence_vectors="late", chunking=config)
    texts_before, late_before, passes_before = _counts(embedder)
    index.ingest_documents([Document(doc_id="stone", title=TITLE, text=text, source="test")])
    texts, late, passes = _counts(embedder)
    stats = index.stats()
    assert stats["chunks"] >= 5
    assert (late - late_before, passes - passes_before) == (stats["sentences"], 0)
    assert texts - texts_before == stats["chunks"]
    (profile,) = index.store.get("documents", ids=["stone"], with_vectors=True)
    (center,) = index.store.get("centroids", ids=["stone"], with_vectors=True)
    summary = str(profile.metadata["summary"])
    pooled = np.stack([v for t, v in _stored_sentences(index).items() if t in summary]).mean(axis=0)
    np.testing.assert_allclose(np.asarray(profile.vector), pooled / np.linalg.norm(pooled), atol=1e-5)
    assert float(np.asarray(profile.vector) @ np.asarray(center.vector)) < 0.999


@pytest.mark.parametrize(
    "text",
    [
        " ".join(f"Fact number {n} about the stele concerns its carving and its history." for n in range(40)),
        "The stele " + " ".join(f"bears line {n} of carved text" for n in range(120)),
    ],
    ids=["many sentences", "one sentence past the window"],
)
def test_chunks_are_cut_to_the_models_window_so_every_sentence_is_pooled(
    tmp_path: Path, embedder: OnnxEmbedder, text: str
) -> None:
    """A chunk budget wider than the model's window (4,000 tokens against 256 word pieces) still gives
    chunks the model reads whole, so no sentence needs a pass of its own; a sentence past the window is
    cut into pieces that fit."""
    assert not embedder.reads_whole(text)
    config = ChunkingConfig(chunk_tokens=4000, overlap_tokens=0)
    index = _index(tmp_path, embedder, sentence_vectors="late", chunking=config)
    _, late, passes = _counts(embedder)
    index.ingest_documents([Document(doc_id="stone", title=TITLE, text=text, source="test")])
    _, late_after, passes_after = _counts(embedder)
    stats = index.stats()
    assert stats["chunks"] >= 2
    assert (late_after - late, passes_after - passes) == (stats["sentences"], 0)
    chunks = index.store.get("chunks", where={"doc_id": "stone"})
    assert all(embedder.reads_whole(embedding_text(TITLE, (), chunk.text)) for chunk in chunks)
    stored = _stored_sentences(index)
    assert "".join(stored).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "Ça coûte 3,50 €, naïve café crème über Straße.",
        "日本語の文章です。中文没有空格 and English.",
        "Dose: 12.5mg/kg q.i.d.\tArm B — 1,024 subjects (±3%).\nNext line\u00a0after a no-break space.",
        "emoji🎉 résumé (note) \"quoted\" 'single' e.g. U.S. x-ray HbA1c≥6.5%",
    ],
)
def test_word_pieces_are_counted_as_the_model_reads_them(embedder: OnnxEmbedder, text: str) -> None:
    (with_special_tokens,) = embedder.count_tokens([text])
    assert embedder.count_word_pieces(text) == with_special_tokens - 2
    # Counted by word: a text twice over has twice the pieces, its words now counted from memory.
    assert embedder.count_word_pieces(f"{text} {text}") == 2 * (with_special_tokens - 2)


def test_openai_backend_keeps_embedding_sentences_separately(tmp_path: Path) -> None:
    with ScriptedServer(_embeddings_endpoint) as server:
        remote = OpenAIEmbedder(EmbeddingConfig(backend="openai", model=FAKE_MODEL, base_url=server.url))
        assert not isinstance(remote, SpanEmbedder)
        index = _index(tmp_path, remote, sentence_vectors="late")
        index.ingest_documents([Document(doc_id="stone", title=TITLE, text=TEXT, source="test")])
        sent = [text for r in server.requests for text in r["json"]["input"]]
    stored = _stored_sentences(index)
    assert set(stored) <= set(sent)
    assert len(stored) == 3


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_ingest_bench_reports_the_chunks_only_model_time(
    tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents import load_settings
    from evaluation.bench import run_ingest_bench
    from tests.evaluation.test_runner import write_dataset

    overrides = {"home": str(tmp_path / "home"), "index": {"sentence_vectors": mode}}
    settings = load_settings(overrides, environ={})
    result = run_ingest_bench(write_dataset(tmp_path / "tiny"), settings=settings)
    assert result["sentence_vectors"] == mode
    assert result["ingest_tokens"] == result["raw_tokens"] > 0
    printed = capsys.readouterr().out
    if mode == "late":
        assert result["late_sentences"] + result["sentence_passes"] == result["sentences"] > 0
        assert result["chunks_only_seconds"] > 0
        assert result["ingest_over_chunks_only"] == pytest.approx(
            result["ingest_seconds"] / result["chunks_only_seconds"]
        )
        assert f"{result['ingest_over_chunks_only']:.2f}" in printed
        (ratio,) = result["ingest_over_chunks_only_by_round"]
        assert ratio == pytest.approx(result["ingest_over_chunks_only"])
        summary_sentences = result["texts_embedded"] - result["chunks"] - result["sentence_passes"]
        assert 0 < summary_sentences <= result["documents"] * 20
    else:
        assert result["chunks_only_seconds"] is None and result["late_sentences"] == 0
        assert result["texts_embedded"] == result["chunks"] + result["sentences"]
        assert "n/a (sentences embedded separately)" in printed
        assert result["ingest_over_chunks_only_by_round"] == []


@pytest.mark.parametrize("mode", ["late", "separate"])
def test_offline_answer_quotes_the_sentence_that_answers_with_either_sentence_vectors(
    tmp_path: Path, embedder: OnnxEmbedder, mode: str
) -> None:
    """The answer reads each candidate alone and under its title in both modes (see
    tests/agents/nodes/test_answer_late_vectors.py), so late vectors quote the same sentence."""
    from langgraph.runtime import Runtime

    from agents.context import CallBudget, RunContext
    from agents.llm import UsageLedger
    from agents.nodes.answer import answer_question
    from agents.nodes.retrieve import passage_from_hit
    from agents.settings import load_settings
    from agents.state import AgentState

    index = _index(tmp_path, embedder, sentence_vectors=mode)
    index.ingest_documents([Document(doc_id="stone", title=TITLE, text=TEXT, source="test")])
    question = "How much does the Rosetta Stone weigh?"
    (hit,) = index.dense_chunks(embedder.embed_query(question), 1)
    ranked = [passage_from_hit(hit, hit.score)]
    settings = load_settings({"home": str(tmp_path), "index": {"sentence_vectors": mode}}, environ={})
    ctx = RunContext(
        settings=settings, index=index, llm=None, ledger=UsageLedger(), budget=CallBudget(limit=1)
    )
    state = AgentState(question=question, ranked=ranked, retrieved=ranked, attempts=0)
    answered = answer_question(state, Runtime(context=ctx))
    assert any(s["text"].startswith("It weighs roughly 760 kilograms") for s in answered["sentences"])
