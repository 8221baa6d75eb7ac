"""Signal weights from inverse-cloze probes on a real index (real Chroma, the real ONNX model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import calibration
from retrieval.calibration import FLOOR, SignalWeights
from retrieval.config import ChunkingConfig, IndexConfig
from retrieval.index import Index
from retrieval.models import Document

MAKES = ["Cessna", "Piper", "Beech", "Mooney", "Cirrus", "Diamond", "Maule", "Aeronca"]


def _config(home: Path) -> IndexConfig:
    """Small chunks, so each report holds several and probes have rivals in the same report."""
    return IndexConfig(home=home, chunking=ChunkingConfig(chunk_tokens=72, overlap_tokens=0))


def _report(number: int) -> Document:
    """An accident report that differs from the others only by its names and numbers."""
    tail = f"N{4000 + 37 * number}Q"
    make = MAKES[number % len(MAKES)]
    town = f"Town{number}ville"
    text = " ".join(
        [
            f"The {make} {tail} departed {town} municipal airport for a local flight in the afternoon.",
            f"The pilot of {tail} reported that the engine lost power near {town} during the climb.",
            f"He turned {tail} back toward the {town} runway and landed short in a plowed field.",
            f"An inspection of {tail} after the accident found the fuel selector of the {make} set to off.",
            f"The {make} {tail} sustained substantial damage to both wings and the landing gear.",
            f"Weather at {town} included calm winds, clear skies and visibility of ten miles.",
        ]
    )
    return Document(doc_id=f"report-{number}", title=f"Report {number}", text=text, source=f"r{number}.txt")


@pytest.fixture(scope="module")
def reports_index(tmp_path_factory: pytest.TempPathFactory, embedder: object) -> Index:
    home = tmp_path_factory.mktemp("calibration")
    index = Index(_config(home), embedder=embedder)  # type: ignore[arg-type]
    index.ingest_documents([_report(n) for n in range(16)])
    return index


def test_equal_ranks_keep_equal_weights() -> None:
    weights = SignalWeights.from_ranks([(1, 1), (2, 2)])
    assert (weights.bm25, weights.dense) == (1.0, 1.0)
    assert weights.probes == 2


def test_a_method_that_always_ranks_lower_loses_weight_down_to_the_floor() -> None:
    weights = SignalWeights.from_ranks([(1, 4)] * 10)
    assert weights.bm25 == 1.0
    assert weights.dense == FLOOR


def test_no_probes_give_equal_weights() -> None:
    assert SignalWeights.from_ranks([]) == SignalWeights()


def test_reports_told_apart_by_names_and_numbers_weight_bm25_above_dense(reports_index: Index) -> None:
    weights = reports_index.signal_weights()
    assert weights.probes > 0
    assert weights.bm25_mrr > weights.dense_mrr
    assert weights.bm25 == 1.0
    assert FLOOR <= weights.dense < 1.0


def test_late_sentence_vectors_measure_the_same_weights(tmp_path: Path, embedder: object) -> None:
    """A late sentence vector was pooled in the chunk it is taken out of: as the probe it would find that
    chunk by its own context and make dense search look perfect. The probe is read alone in either mode."""
    indexes = {}
    for mode in ("late", "separate"):
        config = _config(tmp_path / mode).model_copy(update={"sentence_vectors": mode})
        indexes[mode] = Index(config, embedder=embedder)  # type: ignore[arg-type]
        indexes[mode].ingest_documents([_report(n) for n in range(16)])
    separate = indexes["separate"].signal_weights()
    pooled = indexes["late"].signal_weights()
    assert (pooled.bm25, pooled.dense) == (separate.bm25, separate.dense)
    assert pooled.dense_mrr == pytest.approx(separate.dense_mrr, abs=1e-3)


def test_weights_are_saved_for_the_store_and_estimated_again_after_a_change(
    tmp_path: Path, embedder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(_config(tmp_path), embedder=embedder)  # type: ignore[arg-type]
    index.ingest_documents([_report(n) for n in range(6)])
    first = index.signal_weights()
    estimates: list[int] = []

    def counted(index: Index, *, probes: int = calibration.PROBES) -> SignalWeights:
        estimates.append(probes)
        return SignalWeights(bm25=0.5, probes=1)

    monkeypatch.setattr(calibration, "estimate_signal_weights", counted)
    reopened = Index(_config(tmp_path), embedder=embedder)  # type: ignore[arg-type]
    assert reopened.signal_weights() == first
    assert estimates == []
    reopened.ingest_documents([_report(6)])
    assert reopened.signal_weights() == SignalWeights(bm25=0.5, probes=1)
    assert len(estimates) == 1
