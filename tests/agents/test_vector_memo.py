"""An agent's texts are embedded once across its questions, and what it keeps never changes an answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents import Agent
from agents.settings import load_settings
from agents.vector_memo import VectorMemo
from retrieval.config import IndexConfig
from retrieval.embeddings import OnnxEmbedder
from retrieval.index import Index
from retrieval.models import Document

STONE = (
    "The Rosetta Stone is a granodiorite stele found in 1799 near the town of Rashid. "
    "Napoleon's scholars shipped casts of it to Paris, where rival teams raced to read it. "
    "It weighs roughly 760 kilograms and stands over a metre tall. "
    "Its three scripts made the decipherment of hieroglyphs possible."
)


class CountingEmbed:
    """An embed function that records what it was asked for; each text's vector is its length."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


def test_a_text_is_embedded_once_across_calls() -> None:
    memo, embed = VectorMemo(), CountingEmbed()
    first = memo.vectors(["a", "bb", "a"], embed)
    second = memo.vectors(["bb", "ccc"], embed)
    assert embed.calls == [["a", "bb"], ["ccc"]]
    assert (float(first["a"][0]), float(second["bb"][0]), float(second["ccc"][0])) == (1.0, 2.0, 3.0)


def test_the_least_recently_used_text_is_dropped_first() -> None:
    memo, embed = VectorMemo(limit=2), CountingEmbed()
    memo.vectors(["a", "bb"], embed)
    memo.vectors(["a"], embed)  # "a" is now the more recently used
    memo.vectors(["ccc"], embed)
    memo.vectors(["a", "bb"], embed)
    assert embed.calls == [["a", "bb"], ["ccc"], ["bb"]]
    assert len(memo) == 2


def _agent(home: Path, embedder: OnnxEmbedder) -> Agent:
    index = Index(IndexConfig(home=home / "index", sentence_vectors="late"), embedder=embedder)
    if not index.stored_hashes():
        index.ingest_documents([Document(doc_id="stone", title="Rosetta Stone", text=STONE, source="test")])
    settings = load_settings({"home": str(home), "index": {"sentence_vectors": "late"}}, environ={})
    return Agent(settings, index=index)


@pytest.mark.parametrize("question", ["How much does the Rosetta Stone weigh?", "Where was it found?"])
def test_a_later_question_reads_fewer_texts_and_answers_as_a_fresh_agent(
    tmp_path: Path, embedder: OnnxEmbedder, question: str
) -> None:
    agent = _agent(tmp_path, embedder)
    agent.ask("What made the decipherment of hieroglyphs possible?")
    before = embedder.stats.texts
    answer = agent.ask(question)
    read_by_agent = embedder.stats.texts - before

    before = embedder.stats.texts
    fresh = _agent(tmp_path, embedder).ask(question)
    read_fresh = embedder.stats.texts - before

    assert read_by_agent < read_fresh
    assert answer.text == fresh.text
    assert [c.get("quote") for c in answer.citations] == [c.get("quote") for c in fresh.citations]
