"""``multigrain eval``: run the agent, its ablations and the baselines over a dataset, and score them.

The dataset is ingested into its own index under ``<home>/eval/<dataset name>``, which later runs reuse
(unchanged documents are skipped by content hash). Every system answers the same sampled queries over the
same chunks; the scores are the metrics of ``/work/shared/datasets/FORMAT.md``.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, SecretStr
from tqdm import tqdm

from agents import Agent, Answer, ConfigError, Index, MultigrainError, Settings, Step
from evaluation.baselines import run_baselines
from evaluation.datasets import Dataset, Query, load_dataset, sample_queries
from evaluation.errors import DatasetError
from evaluation.metrics import (
    Passage,
    answer_contains,
    answered_share,
    citation_evidence_recall,
    citation_precision,
    declined_share,
    doc_metrics,
    fact_recall,
    mean_defined,
    passage_metrics,
    percentile,
)
from evaluation.report import write_results
from retrieval.index import IngestReport
from retrieval.loaders import load_file

MULTIGRAIN = "multigrain"
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    Step.EXPAND: {Step.EXPAND: {"enabled": False}},
    Step.ROUTE: {Step.ROUTE: {"enabled": False}},
    "links": {Step.RETRIEVE: {"linked_docs": 0}, Step.RERANK: {"chain": False}},
    Step.RERANK: {Step.RERANK: {"enabled": False}},
    Step.VERIFY: {Step.VERIFY: {"enabled": False}},
    "weights": {Step.RETRIEVE: {"signal_weights": False}},
    "drill": {Step.RERANK: {"drill_down": False}},
    "late": {"index": {"sentence_vectors": "separate"}},
}
"""What ``--ablate NAME`` switches off, as updates of settings sections; "links" spans retrieve and rerank,
"weights" fuses BM25 and dense search with equal weights instead of the corpus's, "drill" stops searching the
best document's own units in rerank and answer, "late" embeds each sentence alone instead of pooling it from
its chunk's pass. An ablation that changes what is stored ("late") ingests into an index of its own."""
ABLATABLE_STAGES = tuple(ABLATIONS)
VERDICTS = ("supported", "partial", "unsupported")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


@dataclass(frozen=True)
class QueryOutcome:
    """What the agent returned for one query, reduced to what the metrics read."""

    query_id: str
    answer_text: str
    routed: list[str]
    retrieved: list[Passage]
    passages: list[Passage]
    cited: list[Passage]
    verdicts: list[str | None]
    seconds: float
    stage_seconds: dict[str, float]
    llm_calls: int
    tokens: int
    error: str | None = None
    declined: bool = False

    @property
    def answered(self) -> bool:
        """The agent gave an answer: it neither declined nor failed."""
        return self.error is None and not self.declined and bool(self.answer_text.strip())

    @classmethod
    def failed(cls, query_id: str, seconds: float, error: str) -> QueryOutcome:
        """A query the agent raised on: it counts as having found and answered nothing."""
        return cls(query_id, "", [], [], [], [], [], seconds, {}, 0, 0, error)


def run_eval(
    dataset_dir: Path,
    *,
    settings: Settings,
    out_dir: Path,
    ablate: Sequence[str] = (),
    max_queries: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score Multigrain, an ablation per stage in ``ablate`` and the baselines; write reports to out_dir."""
    started = time.perf_counter()
    _check_ablations(ablate)
    dataset = load_dataset(dataset_dir)
    queries = sample_queries(dataset, max_queries)
    if not queries:
        raise DatasetError(
            f"{dataset.root}: no queries to evaluate (queries.jsonl is empty or max_queries=0)"
        )
    run_settings = eval_settings(settings, dataset.name)
    index = Index(run_settings.index)
    ingest = ingest_dataset(dataset, index, progress=progress)
    variants = variants_of(run_settings, ablate)
    indexes = {name: Index(v.index) for name, v in variants.items() if v.index != run_settings.index}
    own_ingests = {name: ingest_dataset(dataset, own, progress=progress) for name, own in indexes.items()}
    systems, failures = score_systems(variants, index, queries, own_indexes=indexes, progress=progress)
    results: dict[str, Any] = {
        "dataset": dataset.name,
        "dataset_dir": str(dataset.root),
        "settings": public_settings(run_settings),
        "code_version": code_version(),
        "mode": "offline" if run_settings.offline else f"llm: {run_settings.llm.model}",
        "queries": len(queries),
        "ablate": list(ablate),
        "ingest": _ingest_summary(ingest),
        "ablation_ingests": {name: _ingest_summary(report) for name, report in own_ingests.items()},
        "failed_queries": failures,
        "systems": systems,
        "notes": _notes(run_settings),
    }
    results["seconds"] = round(time.perf_counter() - started, 3)
    write_results(results, out_dir)
    return results


def score_systems(
    variants: Mapping[str, Settings],
    index: Index,
    queries: Sequence[Query],
    *,
    own_indexes: Mapping[str, Index],
    progress: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Metrics of each variant (see :func:`variants_of`), over ``index`` or its own index, and of the
    baselines over ``index``, by system; and failed queries by system."""
    # The baselines run first: they load the embedder and BM25 once, before any worker thread needs them.
    baselines = run_baselines(index, queries)
    systems: dict[str, dict[str, Any]] = {}
    failures: dict[str, list[str]] = {}
    for name, variant in variants.items():
        outcomes = ask_all(variant, own_indexes.get(name, index), queries, label=name, progress=progress)
        systems[name] = agent_metrics(outcomes, queries, route_enabled=variant.route.enabled)
        errors = [f"{o.query_id}: {o.error}" for o in outcomes if o.error is not None]
        if errors:
            failures[name] = errors
    return systems | baselines, failures


def _check_ablations(ablate: Sequence[str]) -> None:
    unknown = [stage for stage in ablate if stage not in ABLATABLE_STAGES]
    if unknown:
        raise ConfigError(
            f"cannot ablate {', '.join(map(repr, unknown))}: stages that can be switched off are "
            f"{', '.join(ABLATABLE_STAGES)}"
        )


def eval_settings(settings: Settings, dataset_name: str) -> Settings:
    """The settings with home moved to ``<home>/eval/<dataset name>`` and collections of the dataset's own."""
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("._-") or "dataset"
    home = settings.home / "eval" / folder
    # A Chroma server is shared, so the dataset's collections need names apart from the user's index.
    prefix = f"{settings.index.collection_prefix}-eval-{folder}"
    index = settings.index.model_copy(update={"home": home, "collection_prefix": prefix})
    return settings.model_copy(update={"home": home, "index": index})


def variants_of(settings: Settings, ablate: Sequence[str]) -> dict[str, Settings]:
    """Multigrain's settings and one per ablation, by system name. An ablation that changes what is stored
    gets its index apart, beside the main one: ``<index home>/<system name>``, collections of its own."""
    variants = {MULTIGRAIN: settings}
    for stage in ablate:
        name = f"{MULTIGRAIN}-no-{stage}"
        variant = without(settings, stage)
        if variant.index != settings.index:
            apart = variant.index.model_copy(
                update={
                    "home": settings.index.home / name,
                    "collection_prefix": f"{settings.index.collection_prefix}-no-{stage}",
                }
            )
            variant = variant.model_copy(update={"index": apart})
        variants[name] = variant
    return variants


def without(settings: Settings, stage: str) -> Settings:
    """The settings with one stage switched off, as :data:`ABLATIONS` says."""
    return settings.model_copy(
        update={
            section: getattr(settings, section).model_copy(update=fields)
            for section, fields in ABLATIONS[stage].items()
        }
    )


def ingest_dataset(dataset: Dataset, index: Index, *, progress: bool) -> IngestReport:
    """Bring the index in line with the dataset's documents: add new and changed ones, remove stale ones."""
    if dataset.corpus_path is not None:
        size = dataset.corpus_path.stat().st_size
        documents = load_file(dataset.corpus_path, doc_id="", max_bytes=size + 1)
        with tqdm(documents, desc="ingest (read)", unit="doc", file=sys.stderr, disable=not progress) as bar:
            report = index.ingest_documents(bar)
    else:
        assert dataset.docs_dir is not None
        with tqdm(desc="ingest", unit="file", file=sys.stderr, disable=not progress) as bar:
            report = index.ingest([dataset.docs_dir], base=dataset.root, progress=_advance(bar))
    for path, reason in report.failed:
        print(f"multigrain eval: skipped {path}: {reason}", file=sys.stderr)
    current = set(report.added) | set(report.unchanged) | set(report.replaced)
    for stale in sorted(set(index.stored_hashes()) - current):
        index.remove(stale)
    return report


def _ingest_summary(report: IngestReport) -> dict[str, Any]:
    counts = {
        "added": len(report.added),
        "unchanged": len(report.unchanged),
        "replaced": len(report.replaced),
    }
    return report.as_dict() | counts


def _advance(bar: tqdm) -> Callable[[int, int, str], None]:
    def update(done: int, total: int, _path: str) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


# ----- running the agent -------------------------------------------------------------------------


class _AgentPerThread:
    """One Agent per worker thread, so each question's LLM usage lands in its own agent's ledger."""

    def __init__(self, settings: Settings, index: Index) -> None:
        self._settings = settings
        self._index = index
        self._local = threading.local()

    def ask(self, question: str) -> Answer:
        agent = getattr(self._local, "agent", None)
        if agent is None:
            agent = self._local.agent = Agent(self._settings, index=self._index)
        return agent.ask(question)


def ask_all(
    settings: Settings, index: Index, queries: Sequence[Query], *, label: str, progress: bool
) -> list[QueryOutcome]:
    """Every query through the agent, in query order; concurrently when an LLM does the work."""
    agents = _AgentPerThread(settings, index)

    def ask(query: Query) -> QueryOutcome:
        return _ask_one(agents, query)

    workers = 1 if settings.offline else settings.llm.max_concurrency
    with tqdm(total=len(queries), desc=label, unit="q", file=sys.stderr, disable=not progress) as bar:
        return list(_map_with_progress(ask, queries, workers=workers, on_done=lambda: bar.update(1)))


def _map_with_progress(
    fn: Callable[[Query], T], items: Sequence[Query], *, workers: int, on_done: Callable[[], object]
) -> Iterator[T]:
    if workers <= 1:
        for item in items:
            yield fn(item)
            on_done()
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fn, item) for item in items]
        for future in futures:
            future.add_done_callback(lambda _future: on_done())
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()  # after an unexpected error, the queries not yet started are dropped


def _ask_one(agents: _AgentPerThread, query: Query) -> QueryOutcome:
    started = time.perf_counter()
    try:
        answer = agents.ask(query.text)
    except MultigrainError as exc:
        return QueryOutcome.failed(query.query_id, time.perf_counter() - started, str(exc))
    return outcome_of(query.query_id, answer, time.perf_counter() - started)


def outcome_of(query_id: str, answer: Answer, seconds: float) -> QueryOutcome:
    """The parts of an Answer the metrics need."""
    by_chunk = {p["chunk_id"]: p for p in [*answer.retrieved, *answer.passages]}
    cited = [
        Passage(
            doc_id=c["doc_id"],
            text=by_chunk[c["chunk_id"]]["text"] if c["chunk_id"] in by_chunk else c["quote"],
        )
        for c in answer.citations
    ]
    stage_seconds: dict[str, float] = {}
    for entry in answer.trace:
        if not entry["skipped"]:
            stage_seconds[entry["step"]] = stage_seconds.get(entry["step"], 0.0) + entry["seconds"]
    return QueryOutcome(
        query_id=query_id,
        answer_text=answer.text,
        routed=[d["doc_id"] for d in answer.routed if d["kept"]],
        retrieved=[Passage(doc_id=p["doc_id"], text=p["text"]) for p in answer.retrieved],
        passages=[Passage(doc_id=p["doc_id"], text=p["text"]) for p in answer.passages],
        cited=cited,
        verdicts=[s.get("verdict") for s in answer.sentences],
        seconds=seconds,
        stage_seconds=stage_seconds,
        llm_calls=sum(e["llm_calls"] for e in answer.trace),
        tokens=sum(e["tokens"] for e in answer.trace),
        declined=answer.insufficient,
    )


# ----- scoring -----------------------------------------------------------------------------------


def agent_metrics(
    outcomes: Sequence[QueryOutcome], queries: Sequence[Query], *, route_enabled: bool
) -> dict[str, Any]:
    """Stage-by-stage retrieval metrics, answer and citation metrics, verdicts, latency and LLM use."""
    by_id = {o.query_id: o for o in outcomes}
    metrics: dict[str, Any] = {}
    if route_enabled:
        metrics |= doc_metrics({q: o.routed for q, o in by_id.items()}, queries, prefix="route_")
    metrics |= passage_metrics({q: o.retrieved for q, o in by_id.items()}, queries, prefix="retrieve_")
    metrics |= passage_metrics({q: o.passages for q, o in by_id.items()}, queries)
    answer_scores: dict[str, Callable[[QueryOutcome, Query], float | None]] = {
        "answer_contains": lambda o, q: answer_contains(o.answer_text, q),
        "fact_recall": lambda o, q: fact_recall(o.answer_text, q),
        "citation_precision": lambda o, q: citation_precision(o.cited, q),
        "citation_evidence_recall": lambda o, q: citation_evidence_recall(o.cited, q),
        "supported_share": lambda o, _q: _supported_share(o.verdicts),
        "declined_share": lambda o, q: declined_share(o.declined, q),
        "answered_share": lambda o, q: answered_share(o.answered, q),
    }
    for name, score in answer_scores.items():
        value = mean_defined(score(by_id[q.query_id], q) for q in queries if q.query_id in by_id)
        if value is not None:
            metrics[name] = value
    metrics["verdicts"] = {v: sum(o.verdicts.count(v) for o in outcomes) for v in VERDICTS}
    metrics |= latency_metrics(outcomes)
    metrics["llm_calls_per_query"] = sum(o.llm_calls for o in outcomes) / max(len(outcomes), 1)
    metrics["tokens_per_query"] = sum(o.tokens for o in outcomes) / max(len(outcomes), 1)
    metrics["failed_queries"] = sum(o.error is not None for o in outcomes)
    return metrics


def _supported_share(verdicts: Sequence[str | None]) -> float | None:
    checked = [v for v in verdicts if v is not None]
    return checked.count("supported") / len(checked) if checked else None


def latency_metrics(outcomes: Sequence[QueryOutcome]) -> dict[str, float]:
    """Wall seconds per query, p50 and p95, overall and for each stage that ran."""
    metrics: dict[str, float] = {}
    if not outcomes:
        return metrics
    metrics["latency_p50"] = percentile([o.seconds for o in outcomes], 50)
    metrics["latency_p95"] = percentile([o.seconds for o in outcomes], 95)
    stages = dict.fromkeys(step for o in outcomes for step in o.stage_seconds)
    for stage in stages:
        seconds = [o.stage_seconds[stage] for o in outcomes if stage in o.stage_seconds]
        metrics[f"latency_{stage}_p50"] = percentile(seconds, 50)
        metrics[f"latency_{stage}_p95"] = percentile(seconds, 95)
    return metrics


def _notes(settings: Settings) -> list[str]:
    notes = [
        "Baselines (bm25, dense, hybrid = RRF k=60) search the same chunks for the question as asked; top 10",
    ]
    if settings.rerank.k < 10:
        notes.append(
            f"Multigrain answers from rerank.k = {settings.rerank.k} passages, so its @10 metrics count "
            f"{settings.rerank.k}; retrieve_* metrics score all {settings.retrieve.k} retrieved passages."
        )
    return notes


# ----- provenance --------------------------------------------------------------------------------


def public_settings(settings: BaseModel) -> dict[str, Any]:
    """The settings as JSON-ready data, with every secret field left out."""
    return settings.model_dump(mode="json", exclude=_secret_fields(settings))


def _secret_fields(model: BaseModel) -> dict[str, Any]:
    excluded: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation):
            excluded[name] = True
        elif isinstance(value, BaseModel) and (nested := _secret_fields(value)):
            excluded[name] = nested
    return excluded


def code_version() -> str:
    """``git describe`` of the checkout (with ``-dirty`` for local changes), else the package version."""
    describe = _git("describe", "--always", "--tags")
    if describe is None:
        try:
            return f"multigrain {importlib.metadata.version('multigrain')}"
        except importlib.metadata.PackageNotFoundError:
            return "unknown"
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return f"{describe}-dirty" if changes else describe


def _git(*args: str) -> str | None:
    # --no-optional-locks: reading the version must never rewrite the repository's index file.
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=_PACKAGE_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
