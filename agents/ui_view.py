"""What the web UI shows, computed without Streamlit: answers and traces as rows, labels and HTML; uploads.

``app.py`` only lays these out. Every function here is a plain function of its inputs, so the UI's
content is tested without a browser.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from agents.agent import Answer
from agents.errors import LLMError
from agents.llm import ChatModel
from agents.settings import Settings
from agents.state import AnswerSentence, Citation, Passage, QueryVariant, RoutedDoc, TraceEntry
from retrieval.index import DocProfile, IngestReport
from retrieval.loaders import SUPPORTED_SUFFIXES
from retrieval.models import Document

__all__ = [
    "LEGEND_HTML",
    "STAGES",
    "STYLE",
    "SWITCHABLE_STAGES",
    "VERDICT_SYMBOLS",
    "ConnectionResult",
    "SourceView",
    "answer_html",
    "check_connection",
    "chunk_titles",
    "citation_label",
    "degradation_notice",
    "demo_folder",
    "expansion_rows",
    "fingerprint",
    "fused_rows",
    "ingest_uploads",
    "next_stage_label",
    "plain_html",
    "profile_facts",
    "remove_document",
    "rerank_rows",
    "retrieval_tables",
    "routing_rows",
    "safe_filename",
    "sentence_rows",
    "settings_fingerprint",
    "settings_overrides",
    "source_view",
    "step_line",
    "step_rows",
    "thread_label",
    "thread_labels",
    "trace_entry",
    "upload_types",
]

STAGES: Mapping[str, str] = {
    "expand": "Expanding the question",
    "route": "Routing to documents",
    "retrieve": "Searching passages",
    "rerank": "Reranking passages",
    "answer": "Writing the answer",
    "verify": "Checking every citation",
}
SWITCHABLE_STAGES = ("expand", "route", "rerank", "verify")
VERDICT_SYMBOLS: Mapping[str, str] = {"supported": "✓", "partial": "◐", "unsupported": "✗"}
SNIPPET_CHARS = 160
CONTEXT_CHARS = 400  # shown around a quote whose passage is unknown
THREAD_LABEL_CHARS = 48

STYLE = """
<style>
.mg-answer { line-height: 1.7; }
.mg-sentence { padding: 1px 3px; border-radius: 3px; border-bottom: 2px solid transparent; }
.mg-supported { background: #e6f4ea; border-bottom-color: #1e8e3e; }
.mg-partial { background: #fff4e0; border-bottom-color: #f29900; }
.mg-unsupported { background: #fde8e8; border-bottom-color: #d93025; }
.mg-unchecked { background: #f1f3f4; border-bottom-color: #9aa0a6; }
.mg-source { white-space: pre-wrap; font-family: Georgia, serif; font-size: 0.95rem; line-height: 1.6;
  padding: 0.75rem 1rem; border-left: 4px solid #1a73e8; background: #f8f9fa; border-radius: 4px; }
.mg-legend { font-size: 0.8rem; color: #5f6368; margin-top: 0.25rem; }
mark.mg-quote { background: #ffe066; padding: 0 2px; border-radius: 2px; }
</style>
"""


def _html_text(text: str) -> str:
    """Text safe inside an HTML block of Streamlit markdown: escaped, with no '$' math and no blank lines."""
    return html.escape(text).replace("$", "&#36;").replace("\n", "&#10;")


def plain_html(text: str) -> str:
    """Unverified text (the answer as it streams in) as an HTML block that Markdown leaves alone."""
    return f'<div class="mg-answer">{_html_text(text)}</div>'


# ----- the answer ----------------------------------------------------------------------------------


def answer_html(sentences: Sequence[AnswerSentence]) -> str:
    """The answer's sentences, each shaded by verdict (green supported, amber partial, red unsupported)."""
    spans = []
    for sentence in sentences:
        verdict = sentence["verdict"] or "unchecked"
        tip = f"{verdict} (support {sentence['support']:.2f})" if sentence["verdict"] else "not checked"
        spans.append(
            f'<span class="mg-sentence mg-{verdict}" title="{tip}">{_html_text(sentence["text"])}</span>'
        )
    return f'<div class="mg-answer">{" ".join(spans)}</div>'


LEGEND_HTML = (
    '<div class="mg-legend">Checked against the sources: '
    '<span class="mg-sentence mg-supported">supported</span> '
    '<span class="mg-sentence mg-partial">partly supported</span> '
    '<span class="mg-sentence mg-unsupported">unsupported</span></div>'
)


def citation_label(citation: Citation) -> str:
    """A citation's button text: ``[1] Title p. 3`` (no page for unpaged documents)."""
    page = f" p. {citation['page']}" if citation["page"] is not None else ""
    return f"[{citation['number']}] {citation['title']}{page}"


def sentence_rows(sentences: Sequence[AnswerSentence]) -> list[dict[str, Any]]:
    """One row per answer sentence: its verdict, support and the citations it carries."""
    return [
        {
            "verdict": f"{VERDICT_SYMBOLS.get(s['verdict'] or '', '·')} {s['verdict'] or 'not checked'}",
            "support": round(s["support"], 2),
            "cites": " ".join(f"[{n}]" for n in s["citations"]),
            "sentence": s["text"],
        }
        for s in sentences
    ]


@dataclass(frozen=True)
class SourceView:
    """A followed citation: where it points and the passage with its quote marked."""

    title: str
    doc_id: str
    section: str
    page: int | None
    html: str
    quote: str
    exact: bool


def source_view(document: Document, citation: Citation, *, passage: Passage | None = None) -> SourceView:
    """The citing passage from the document's text, the quote wrapped in ``<mark class="mg-quote">``.

    The quote is marked at the citation's exact character span; ``exact`` is False when the text there
    differs from the quote the verifier recorded.
    """
    text = document.text
    start, end = max(0, citation["start"]), min(len(text), citation["end"])
    low = min(start, passage["start"]) if passage else max(0, start - CONTEXT_CHARS)
    high = max(end, passage["end"]) if passage else min(len(text), end + CONTEXT_CHARS)
    before = ("…" if low > 0 else "") + text[low:start]
    after = text[end:high] + ("…" if high < len(text) else "")
    marked = f'<mark class="mg-quote">{_html_text(text[start:end])}</mark>'
    body = f"{_html_text(before)}{marked}{_html_text(after)}"
    return SourceView(
        title=document.title,
        doc_id=document.doc_id,
        section=citation["section"],
        page=citation["page"],
        html=f'<div class="mg-source">{body}</div>',
        quote=text[start:end],
        exact=" ".join(text[start:end].split()) == " ".join(citation["quote"].split()),
    )


# ----- the trace -----------------------------------------------------------------------------------


def trace_entry(trace: Sequence[TraceEntry], step: str) -> TraceEntry | None:
    """The last trace entry of a step (verify can send the answer back, so a step may run twice)."""
    found = [entry for entry in trace if entry["step"] == step]
    return found[-1] if found else None


def step_line(entry: TraceEntry) -> str:
    """One finished step for the live status: what it did, how long it took, and its LLM use."""
    name = STAGES.get(entry["step"], entry["step"])
    state = "skipped" if entry["skipped"] else f"{entry['seconds']:.2f} s"
    calls = f", {entry['llm_calls']} LLM calls, {entry['tokens']} tokens" if entry["llm_calls"] else ""
    degraded = f" — degraded: {'; '.join(entry['degraded'])}" if entry["degraded"] else ""
    return f"✓ {name}: {state}{calls}{degraded}"


def next_stage_label(finished: str) -> str:
    """The live status label once ``finished`` is done: the stage that runs next."""
    order = list(STAGES)
    if finished not in order or finished == order[-1]:
        return "Finishing…"
    return f"{STAGES[order[order.index(finished) + 1]]}…"


def step_rows(trace: Sequence[TraceEntry]) -> list[dict[str, Any]]:
    """Per step: seconds, LLM calls, tokens, whether it was skipped and any degradation."""
    return [
        {
            "step": entry["step"],
            "seconds": round(entry["seconds"], 3),
            "LLM calls": entry["llm_calls"],
            "tokens": entry["tokens"],
            "skipped": entry["skipped"],
            "degraded": "; ".join(entry["degraded"]),
        }
        for entry in trace
    ]


def degradation_notice(trace: Sequence[TraceEntry]) -> str | None:
    """One line naming the steps that fell back to a weaker method, or None when none did."""
    steps = list(dict.fromkeys(entry["step"] for entry in trace if entry["degraded"]))
    if not steps:
        return None
    return f"Degraded: {', '.join(steps)} fell back to a weaker method; their panels below say why."


def expansion_rows(variants: Sequence[QueryVariant]) -> list[dict[str, str]]:
    """The query variants the searches ran on: the question, rewrites, keywords, pseudo-documents."""
    return [{"kind": v["kind"].replace("_", " "), "text": v["text"]} for v in variants]


def routing_rows(routed: Sequence[RoutedDoc]) -> list[dict[str, Any]]:
    """Candidate documents by fused score, whether each was kept, and each signal's rank."""
    rows = []
    for doc in sorted(routed, key=lambda d: -d["score"]):
        ranks = {f"{name} rank": int(rank) for name, rank in doc["signals"].items()}
        rows.append(
            {
                "document": doc["title"] or doc["doc_id"],
                "score": doc["score"],
                "status": "kept" if doc["kept"] else "dropped",
                **ranks,
            }
        )
    return rows


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def _variant_name(label: str, variants: Sequence[QueryVariant]) -> str:
    """'original:0' -> 'original: How much…'; 'merged' -> the merged query of all variants."""
    match = re.fullmatch(r"(\w+):(\d+)", label)
    if match is None:
        return "all variants merged" if label == "merged" else label
    index = int(match.group(2))
    text = variants[index]["text"] if index < len(variants) else ""
    return f"{match.group(1).replace('_', ' ')}: {_snippet(text)}"


def retrieval_tables(
    by_variant: Mapping[str, Sequence[str]],
    variants: Sequence[QueryVariant],
    titles: Mapping[str, str],
) -> dict[str, list[dict[str, Any]]]:
    """Per query variant, the chunks each search method found and their rank in it (dense, BM25)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for label, chunk_ids in by_variant.items():
        variant, _, method = label.rpartition("/")
        rows = tables.setdefault(_variant_name(variant or label, variants), {})
        for rank, chunk_id in enumerate(chunk_ids, start=1):
            row = rows.setdefault(chunk_id, {"chunk": chunk_id, "document": titles.get(chunk_id, "")})
            row[f"{method or 'rank'} rank"] = rank
    return {name: list(rows.values()) for name, rows in tables.items()}


def fused_rows(passages: Sequence[Passage], trace: Sequence[TraceEntry]) -> list[dict[str, Any]]:
    """The passages after reciprocal rank fusion, best first, then those that joined by a link, with
    what named them."""
    entry = trace_entry(trace, "retrieve")
    named_by = {
        item["chunk_id"]: item["named_by"] for item in (entry["outputs"] if entry else {}).get("linked", [])
    }
    titles = {p["chunk_id"]: p["title"] for p in passages}
    return [
        {
            "rank": i,
            "chunk": p["chunk_id"],
            "document": p["title"],
            "section": p["section"],
            "score": round(p["score"], 4),
            "found by": _found_by(named_by.get(p["chunk_id"]), titles),
            "text": _snippet(p["text"]),
        }
        for i, p in enumerate(passages, start=1)
    ]


def _found_by(named_by: str | None, titles: Mapping[str, str]) -> str:
    if named_by is None:
        return "search"
    if named_by == "question":
        return "named in the question"
    return f"named in {titles.get(named_by, named_by)}"


def rerank_rows(trace: Sequence[TraceEntry], titles: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each passage's place before and after reranking, how far it moved, and whether it was kept."""
    entry = trace_entry(trace, "rerank")
    if entry is None:
        return []
    kept = int(entry["outputs"].get("kept", 0))
    rows = []
    for item in entry["outputs"].get("order", []):
        moved = int(item["before"]) - int(item["after"])
        rows.append(
            {
                "after": item["after"],
                "before": item["before"],
                "moved": f"▲ {moved}" if moved > 0 else f"▼ {-moved}" if moved < 0 else "–",
                "kept": int(item["after"]) <= kept,
                "chunk": item["chunk_id"],
                "document": titles.get(item["chunk_id"], ""),
            }
        )
    return rows


def chunk_titles(answer: Answer) -> dict[str, str]:
    """Document title of every chunk the answer's run saw."""
    return {p["chunk_id"]: p["title"] for p in [*answer.retrieved, *answer.passages]}


def thread_label(history: Sequence[Mapping[str, str]]) -> str:
    """A conversation's name in the sidebar: its first question, shortened."""
    if not history:
        return "New conversation"
    first = " ".join(history[0].get("question", "").split())
    return first if len(first) <= THREAD_LABEL_CHARS else first[: THREAD_LABEL_CHARS - 1] + "…"


def thread_labels(histories: Mapping[str, Sequence[Mapping[str, str]]]) -> dict[str, str]:
    """Sidebar names for conversations (id -> history), made unique: a repeated name gets ' (2)', ' (3)'."""
    labels: dict[str, str] = {}
    seen: dict[str, int] = {}
    for thread_id, history in histories.items():
        label = thread_label(history)
        seen[label] = seen.get(label, 0) + 1
        labels[thread_id] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    return labels


# ----- settings ------------------------------------------------------------------------------------


def settings_overrides(
    *,
    base_url: str,
    model: str,
    stages: Mapping[str, bool],
    retrieve_k: int,
    rerank_k: int,
    route_min: int,
    route_max: int,
) -> dict[str, Any]:
    """The ``load_settings`` overrides for what the settings form holds (the API key goes separately)."""
    overrides: dict[str, Any] = {
        "llm": {"model": model.strip() or "gpt-4o-mini"},
        "retrieve": {"k": retrieve_k},
        "rerank": {"k": rerank_k},
        "route": {"min_docs": route_min, "max_docs": route_max},
        "expand": {},
        "verify": {},
    }
    if base_url.strip():
        overrides["llm"]["base_url"] = base_url.strip()
    for stage in SWITCHABLE_STAGES:
        overrides[stage]["enabled"] = bool(stages.get(stage, True))
    return overrides


def _secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets(item)


def fingerprint(model: BaseModel) -> str:
    """A cache key that changes with any setting, secrets included, without containing them."""
    material = "\x00".join([model.model_dump_json(), *_secrets(model.model_dump())])
    return hashlib.sha256(material.encode()).hexdigest()


def settings_fingerprint(settings: Settings) -> str:
    """The cache key of an Agent built from ``settings``."""
    return fingerprint(settings)


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of 'Test connection'."""

    ok: bool
    message: str


def check_connection(
    settings: Settings, *, ping: Callable[[Settings], str] | None = None
) -> ConnectionResult:
    """One tiny call to the configured model; on failure the ``LLMError`` message says exactly what failed."""
    if not settings.llm.enabled:
        return ConnectionResult(False, "No LLM is configured (set a base URL or an API key): offline mode.")
    call = ping or (lambda s: ChatModel(s.llm).ping())
    endpoint = settings.llm.base_url or "https://api.openai.com/v1"
    try:
        reply = call(settings)
    except LLMError as exc:
        return ConnectionResult(False, str(exc))
    message = f"Connected to {settings.llm.model} at {endpoint}: it replied {reply.strip()!r}."
    return ConnectionResult(True, message)


# ----- the library ---------------------------------------------------------------------------------


def profile_facts(profile: DocProfile) -> str:
    """A document's id, size and source in one line (pages only for paged documents)."""
    pages = f" · {profile.pages} pages" if profile.pages else ""
    return (
        f"id `{profile.doc_id}` · {profile.chunks} chunks · {profile.sentences} sentences{pages} · "
        f"{profile.chars:,} characters · {profile.source}"
    )


def upload_types() -> list[str]:
    """File extensions the uploader accepts, without dots."""
    return sorted(suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES)


def demo_folder() -> AbstractContextManager[Path]:
    """The bundled demo corpus as a folder on disk (a context manager, as ``importlib.resources`` has it)."""
    return as_file(files("retrieval") / "data" / "demo")


def safe_filename(name: str) -> str:
    """An uploaded file's name as a plain file name: no folders, no leading dots, no odd characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")
    return cleaned or "upload"


def _refusal(name: str, data: bytes, *, max_mb: float) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"'{suffix}'" if suffix else "(no extension)"
        return f"unsupported file type {kind} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
    if len(data) > max_mb * 2**20:
        return f"file is {len(data) / 2**20:.3g} MB, over the {max_mb:g} MB limit (index.max_file_mb)"
    return None


def ingest_uploads(
    index: Any,
    uploads: Iterable[tuple[str, bytes]],
    folder: Path,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Save each (name, bytes) upload into ``folder`` and ingest them; a bad file gets its reason.

    Files refused before saving (type, size) and files the loaders reject are listed in ``failed`` with
    the reason, and a rejected file is not kept on disk.
    """
    outcome = IngestReport()
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Path] = {}
    for name, data in uploads:
        clean = safe_filename(name)
        refusal = _refusal(clean, data, max_mb=index.config.max_file_mb)
        if refusal is not None:
            outcome.failed.append((name, refusal))
            continue
        path = folder / clean
        path.write_bytes(data)
        saved[str(path)] = path
    if not saved:
        return outcome
    report: IngestReport = index.ingest(list(saved.values()), base=folder, progress=progress)
    for path_text, reason in report.failed:
        outcome.failed.append((Path(path_text).name, reason))
        bad = saved.get(path_text)
        if bad is not None:
            bad.unlink(missing_ok=True)
    outcome.added, outcome.replaced, outcome.unchanged = report.added, report.replaced, report.unchanged
    return outcome


def remove_document(index: Any, doc_id: str, folder: Path) -> bool:
    """Remove a document from the index, and its uploaded file when no other document comes from it."""
    profiles = {p.doc_id: p for p in index.documents()}
    profile = profiles.get(doc_id)
    removed = bool(index.remove(doc_id))
    if profile is None or not removed:
        return removed
    source = Path(profile.source)
    shared = any(p.source == profile.source for d, p in profiles.items() if d != doc_id)
    if not shared and source.parent.resolve() == folder.resolve():
        source.unlink(missing_ok=True)
    return removed
