"""Write an evaluation's results: ``results.json``, a Markdown table and a recall-at-k plot."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.metrics import DEFAULT_KS

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RECALL_PLOT = "recall_at_k.png"

TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    *((f"doc_recall@{k}", f"doc_recall@{k}") for k in DEFAULT_KS),
    *((f"evidence_recall@{k}", f"evidence_recall@{k}") for k in DEFAULT_KS),
    ("answer_hit@5", "answer_hit@5"),
    ("citation_precision", "citation_precision"),
    ("supported_share", "supported_share"),
    ("latency_p50", "latency_p50 (s)"),
)
PLOTTED_METRICS = ("evidence_recall", "doc_recall")
MISSING = "–"


def write_results(results: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the three result files into ``out_dir`` (created if needed); returns their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / RESULTS_JSON, "markdown": out_dir / RESULTS_MD, "plot": out_dir / RECALL_PLOT}
    paths["json"].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown_report(results), encoding="utf-8")
    plot_recall_at_k(results["systems"], paths["plot"], title=str(results.get("dataset", "")))
    return paths


def markdown_report(results: Mapping[str, Any]) -> str:
    """A heading, what was run, and one table row per system with the key metrics."""
    lines = [
        f"# Evaluation: {results.get('dataset', '')}",
        "",
        f"{results.get('queries', 0)} queries, mode {results.get('mode', '?')}, "
        f"code {results.get('code_version', '?')}, {results.get('seconds', 0.0):.1f} s.",
        "",
        markdown_table(results["systems"]),
    ]
    notes = [*_own_ingests(results), *(results.get("notes") or [])]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _own_ingests(results: Mapping[str, Any]) -> list[str]:
    """A line for each ablation that ingested into an index of its own, beside the main ingest."""
    main = results.get("ingest") or {}
    return [
        f"{name} has an index of its own: {own['chunks']} chunks and {own['sentences']} sentences stored "
        f"in {own['seconds']:.1f} s (multigrain: {main.get('chunks', 0)} and {main.get('sentences', 0)} in "
        f"{main.get('seconds', 0.0):.1f} s; an unchanged document is not stored again)"
        for name, own in (results.get("ablation_ingests") or {}).items()
    ]


def markdown_table(systems: Mapping[str, Mapping[str, Any]]) -> str:
    """Systems as rows, the key metrics as columns; a metric a system lacks shows as a dash."""
    header = "| system | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in TABLE_COLUMNS) + " |"
    rows = [
        f"| {name} | " + " | ".join(_cell(metrics.get(key), key) for key, _ in TABLE_COLUMNS) + " |"
        for name, metrics in systems.items()
    ]
    return "\n".join([header, rule, *rows])


def _cell(value: Any, key: str) -> str:
    if not isinstance(value, int | float):
        return MISSING
    return f"{value:.2f}" if key.startswith("latency") else f"{value:.3f}"


def plot_recall_at_k(
    systems: Mapping[str, Mapping[str, Any]], path: Path, *, ks: Sequence[int] = DEFAULT_KS, title: str = ""
) -> None:
    """One panel per metric (evidence_recall@k, doc_recall@k) with a line per system, saved as PNG."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(PLOTTED_METRICS), sharey=True)
    for ax, metric in zip(axes, PLOTTED_METRICS, strict=True):
        for name, metrics in systems.items():
            points = [
                (k, metrics[f"{metric}@{k}"]) for k in ks if isinstance(metrics.get(f"{metric}@{k}"), float)
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set_title(f"{metric}@k")
        ax.set_xlabel("k")
        ax.set_xticks(list(ks))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall")
    axes[-1].legend(loc="lower right", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=110)
