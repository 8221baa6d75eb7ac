"""``run_eval`` end to end, offline, on tiny datasets written to tmp_path: what lands in the results files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agents.errors import ConfigError
from agents.settings import Settings, load_settings
from evaluation.datasets import load_dataset
from evaluation.runner import eval_settings, ingest_dataset, public_settings, run_eval, variants_of, without
from retrieval.index import Index
from retrieval.packs import unpack
from tests.openai_server import ScriptedOpenAI

DOCS = {
    "bees": (
        "Honeybee colonies",
        "A honeybee colony has one queen and thousands of female workers. Worker bees tell their sisters "
        "where flowers are by performing a waggle dance on the comb. In winter the bees form a tight "
        "cluster and shiver to keep the queen warm.",
    ),
    "stone": (
        "The Rosetta Stone",
        "The Rosetta Stone is a granodiorite stele inscribed with a decree issued in Memphis in 196 BC. "
        "The decree appears in three scripts: hieroglyphs, Demotic and Ancient Greek. Champollion "
        "announced his decipherment of the hieroglyphs in 1822.",
    ),
    "tea": (
        "Green tea",
        "Green tea is made from leaves that are steamed or pan-fired soon after picking. This stops "
        "oxidation and keeps the leaves green. Brewing at 80 degrees avoids a bitter taste.",
    ),
    "volcano": (
        "Volcanoes",
        "A volcano forms where magma reaches the surface of the crust. Shield volcanoes such as Mauna Loa "
        "erupt runny basalt lava. Explosive eruptions happen when gas-rich magma fragments.",
    ),
    "chess": (
        "Chess openings",
        "The Sicilian Defence begins with 1.e4 c5. It is the most popular response to the king's pawn "
        "opening. White often plays the Open Sicilian with 2.Nf3 and 3.d4.",
    ),
    "light": (
        "Lighthouses",
        "The Pharos of Alexandria was one of the Seven Wonders of the Ancient World. Fresnel lenses made "
        "lighthouse beams visible for more than twenty miles. Most lighthouses are now automated.",
    ),
}
QUERIES = [
    (
        "q1",
        "How do worker bees tell their sisters where flowers are?",
        "waggle dance",
        "bees",
        "Worker bees tell their sisters where flowers are by performing a waggle dance on the comb.",
    ),
    (
        "q2",
        "When did Champollion announce the decipherment of the hieroglyphs?",
        "1822",
        "stone",
        "Champollion announced his decipherment of the hieroglyphs in 1822.",
    ),
    (
        "q3",
        "What lava do shield volcanoes erupt?",
        "basalt",
        "volcano",
        "Shield volcanoes such as Mauna Loa erupt runny basalt lava.",
    ),
]
KS = (1, 5, 10)
FORMAT_METRICS = [f"{name}@{k}" for name in ("doc_recall", "evidence_recall", "answer_hit") for k in KS]
AGENT_METRICS = [
    *FORMAT_METRICS,
    *(f"route_doc_recall@{k}" for k in KS),
    *(f"retrieve_{name}" for name in FORMAT_METRICS),
    "answer_contains",
    "fact_recall",
    "citation_precision",
    "citation_evidence_recall",
    "supported_share",
    "latency_p50",
    "latency_p95",
    "latency_route_p50",
    "latency_retrieve_p95",
    "llm_calls_per_query",
    "tokens_per_query",
]
SHARES = ("recall", "answer_hit", "answer_contains", "precision", "supported_share")


def write_dataset(root: Path, *, as_files: bool = False, doc_ids: tuple[str, ...] = tuple(DOCS)) -> Path:
    """A dataset folder in the shared layout: corpus.jsonl (or docs/*.txt), queries.jsonl and qrels."""
    (root / "qrels").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"name": root.name}), encoding="utf-8")
    name_of = {doc_id: f"docs/{doc_id}.txt" if as_files else doc_id for doc_id in doc_ids}
    if as_files:
        (root / "docs").mkdir()
        for doc_id in doc_ids:
            title, text = DOCS[doc_id]
            (root / name_of[doc_id]).write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    else:
        lines = [json.dumps({"_id": d, "title": DOCS[d][0], "text": DOCS[d][1]}) for d in doc_ids]
        (root / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    queries = [
        {
            "_id": query_id,
            "text": text,
            "answers": [answer],
            "evidence": [{"doc_id": name_of.get(doc_id, doc_id), "text": evidence}],
            "metadata": {"facts": [answer]} if answer.isdigit() else {},
        }
        for query_id, text, answer, doc_id, evidence in QUERIES
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    qrels = "".join(f"{q[0]}\t{name_of.get(q[3], q[3])}\t1\n" for q in QUERIES)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels, encoding="utf-8")
    return root


def offline_settings(home: Path) -> Settings:
    return load_settings({"home": str(home)}, environ={})


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("eval")
    dataset = write_dataset(root / "tiny-corpus")
    out_dir = root / "out"
    results = run_eval(
        dataset,
        settings=offline_settings(root / "home"),
        out_dir=out_dir,
        ablate=["rerank"],
        max_queries=2,
        progress=False,
    )
    return results, out_dir


def test_results_name_every_system_and_run(corpus_run: tuple[dict[str, Any], Path]) -> None:
    results, out_dir = corpus_run
    assert json.loads((out_dir / "results.json").read_text(encoding="utf-8")) == results
    assert results["dataset"] == "tiny-corpus"
    assert results["queries"] == 2
    assert results["code_version"]
    assert results["seconds"] > 0
    assert results["settings"]["home"].endswith("eval/tiny-corpus")
    assert results["ingest"]["added"] == len(DOCS)
    assert list(results["systems"]) == ["multigrain", "multigrain-no-rerank", "bm25", "dense", "hybrid"]


@pytest.mark.parametrize("system", ["multigrain", "multigrain-no-rerank"])
def test_agent_systems_report_every_stage(corpus_run: tuple[dict[str, Any], Path], system: str) -> None:
    metrics = corpus_run[0]["systems"][system]
    assert set(AGENT_METRICS) <= set(metrics)
    assert set(metrics["verdicts"]) == {"supported", "partial", "unsupported"}
    assert metrics["failed_queries"] == 0
    assert metrics["llm_calls_per_query"] == 0  # offline
    assert metrics["latency_p50"] <= metrics["latency_p95"]
    assert ("latency_rerank_p50" in metrics) == (system == "multigrain")


@pytest.mark.parametrize("system", ["multigrain", "multigrain-no-rerank", "bm25", "dense", "hybrid"])
def test_every_share_lies_between_zero_and_one(corpus_run: tuple[dict[str, Any], Path], system: str) -> None:
    metrics = corpus_run[0]["systems"][system]
    assert set(FORMAT_METRICS) <= set(metrics)
    shares = {name: value for name, value in metrics.items() if any(part in name for part in SHARES)}
    assert shares
    assert all(0.0 <= value <= 1.0 for value in shares.values()), shares


@pytest.mark.parametrize("system", ["multigrain", "bm25", "dense", "hybrid"])
def test_distinct_topics_are_found(corpus_run: tuple[dict[str, Any], Path], system: str) -> None:
    metrics = corpus_run[0]["systems"][system]
    assert metrics["doc_recall@10"] == 1.0
    assert metrics["evidence_recall@10"] == 1.0


def test_markdown_table_and_plot_are_written(corpus_run: tuple[dict[str, Any], Path]) -> None:
    results, out_dir = corpus_run
    table = (out_dir / "results.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| system"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert columns == [
        "system",
        *(f"doc_recall@{k}" for k in KS),
        *(f"evidence_recall@{k}" for k in KS),
        "answer_hit@5",
        "citation_precision",
        "supported_share",
        "latency_p50 (s)",
    ]
    for system in results["systems"]:
        assert f"| {system} |" in table
    assert (out_dir / "recall_at_k.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_docs_folder_dataset_uses_relative_paths_as_ids(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny-files", as_files=True)
    results = run_eval(
        dataset,
        settings=offline_settings(tmp_path / "home"),
        out_dir=tmp_path / "out",
        max_queries=1,
        progress=False,
    )
    assert list(results["systems"]) == ["multigrain", "bm25", "dense", "hybrid"]
    assert results["systems"]["bm25"]["doc_recall@1"] == 1.0
    assert results["systems"]["multigrain"]["doc_recall@10"] == 1.0


def test_a_second_ingest_reuses_the_index_and_drops_removed_documents(tmp_path: Path) -> None:
    settings = eval_settings(offline_settings(tmp_path / "home"), "tiny")
    index = Index(settings.index)
    first = ingest_dataset(load_dataset(write_dataset(tmp_path / "v1")), index, progress=False)
    again = ingest_dataset(load_dataset(tmp_path / "v1"), index, progress=False)
    smaller = ingest_dataset(
        load_dataset(write_dataset(tmp_path / "v2", doc_ids=("bees", "stone"))), index, progress=False
    )
    assert (len(first.added), len(again.added), len(again.unchanged)) == (len(DOCS), 0, len(DOCS))
    assert sorted(smaller.unchanged) == ["bees", "stone"]
    assert sorted(index.stored_hashes()) == ["bees", "stone"]


@pytest.mark.parametrize("stage", ["retrieve", "answer", "nonsense"])
def test_only_switchable_stages_can_be_ablated(tmp_path: Path, stage: str) -> None:
    with pytest.raises(ConfigError, match="expand, route, links, rerank, verify, weights, drill, late"):
        run_eval(
            write_dataset(tmp_path / "d"),
            settings=offline_settings(tmp_path),
            out_dir=tmp_path / "o",
            ablate=[stage],
        )
    assert not (tmp_path / "o").exists()


def test_ablating_links_stops_both_following_them_and_the_chain_order(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path)
    ablated = without(settings, "links")
    assert (ablated.retrieve.linked_docs, ablated.rerank.chain) == (0, False)
    assert (settings.retrieve.linked_docs, settings.rerank.chain) == (5, True)
    assert without(settings, "rerank").rerank.enabled is False


def test_ablating_weights_fuses_bm25_and_dense_equally(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path)
    assert settings.retrieve.signal_weights is True
    assert without(settings, "weights").retrieve.signal_weights is False


def test_ablating_late_vectors_scores_an_index_of_sentences_read_alone_in_the_same_run(
    tmp_path: Path,
) -> None:
    settings = offline_settings(tmp_path / "home")
    results = run_eval(
        write_dataset(tmp_path / "tiny-late"),
        settings=settings,
        out_dir=tmp_path / "out",
        ablate=["late"],
        max_queries=2,
        progress=False,
    )
    assert list(results["systems"])[:2] == ["multigrain", "multigrain-no-late"]
    assert results["systems"]["multigrain-no-late"]["doc_recall@10"] == 1.0
    own = results["ablation_ingests"]["multigrain-no-late"]
    assert (own["added"], own["sentences"]) == (len(DOCS), results["ingest"]["sentences"])
    assert "multigrain-no-late has an index of its own" in (tmp_path / "out" / "results.md").read_text(
        "utf-8"
    )

    variants = variants_of(eval_settings(settings, "tiny-late"), ["late"])
    closeness = {}
    for name, variant in variants.items():
        index = Index(variant.index)
        stored = {
            s.text: s.vector
            for r in index.store.get("sentences", where={"doc_id": "bees"})
            for s in unpack(r)
        }
        alone = index.embedder.embed_documents(list(stored))
        closeness[name] = [float(v @ a) for v, a in zip(stored.values(), alone, strict=True)]
    assert (
        variants["multigrain-no-late"].index.home == variants["multigrain"].index.home / "multigrain-no-late"
    )
    assert closeness["multigrain-no-late"] == pytest.approx([1.0] * 3, abs=1e-5)
    assert all(c < 0.999 for c in closeness["multigrain"])


def test_settings_in_results_leave_secrets_out(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, llm={"api_key": SecretStr("sk-very-secret")})  # type: ignore[call-arg,arg-type]
    dumped = public_settings(settings)
    assert "sk-very-secret" not in json.dumps(dumped)
    assert "api_key" not in dumped["llm"]
    assert "api_key" not in dumped["index"]["embedding"]
    assert dumped["llm"]["model"] == settings.llm.model


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The smallest JSON value a schema accepts, with one item in every list (any node's output model)."""
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return minimal_instance(schema["anyOf"][0], defs)
    kind = schema.get("type")
    if kind == "object":
        return {name: minimal_instance(field, defs) for name, field in schema.get("properties", {}).items()}
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), defs)]
    return {"integer": 1, "number": 1.0, "boolean": True}.get(str(kind), "text")


def scripted_reply(body: dict[str, Any]) -> str:
    if body.get("stream"):
        return "Worker bees perform a waggle dance [1]."
    response_format = body.get("response_format")
    if response_format is None:
        return "A short pseudo-document about the question."
    schema = response_format["json_schema"]["schema"]
    return json.dumps(minimal_instance(schema, schema.get("$defs", {})))


def test_with_an_llm_queries_run_concurrently_and_every_call_is_counted_once(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny")
    with ScriptedOpenAI(scripted_reply) as server:
        overrides = {
            "home": str(tmp_path / "home"),
            "llm": {"base_url": server.base_url, "max_concurrency": 3},
        }
        settings = load_settings(overrides, environ={})
        results = run_eval(dataset, settings=settings, out_dir=tmp_path / "out", progress=False)
    metrics = results["systems"]["multigrain"]
    assert results["mode"] == f"llm: {settings.llm.model}"
    assert results["failed_queries"] == {}
    assert metrics["llm_calls_per_query"] * len(QUERIES) == len(server.requests) > 0
    assert metrics["tokens_per_query"] > 0
    assert metrics["latency_rerank_p50"] > 0
