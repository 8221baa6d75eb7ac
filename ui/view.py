"""What the chat shows, computed without Streamlit: the answer, its citations and the run's trace.

The answer shaded by verdict, a followed citation's passage with its quote marked, each stage's trace as
rows and status labels, and conversation names for the sidebar. ``app.py`` only lays these out; every
function here is a plain function of its inputs, so what the chat shows is tested without a browser.
The settings form and the document library act through ``ui.library``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import Answer, Step
from agents.state import AnswerSentence, Citation, Passage, QueryVariant, RoutedDoc, TraceEntry
from retrieval.models import Document

__all__ = [
    "LEGEND_HTML",
    "STAGES",
    "STYLE",
    "VERDICT_SYMBOLS",
    "SourceView",
    "answer_html",
    "chunk_titles",
    "citation_label",
    "degradation_notice",
    "expansion_rows",
    "fused_rows",
    "markdown_code",
    "markdown_list",
    "markdown_text",
    "next_stage_label",
    "plain_html",
    "rerank_rows",
    "retrieval_tables",
    "routing_rows",
    "sentence_rows",
    "source_view",
    "step_line",
    "step_rows",
    "thread_label",
    "thread_labels",
    "trace_entry",
]

STAGES: Mapping[str, str] = {
    Step.EXPAND: "Expanding the question",
    Step.ROUTE: "Routing to documents",
    Step.RETRIEVE: "Searching passages",
    Step.RERANK: "Reranking passages",
    Step.ANSWER: "Writing the answer",
    Step.VERIFY: "Checking every citation",
}
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


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~$&])")
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([#+=-]|\d+(?=[.)]))", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")


def markdown_text(text: str) -> str:
    """Text that Streamlit's Markdown (bodies, captions, labels, tooltips) shows literally.

    Escapes what Markdown would read as syntax: links and images, emphasis, code, HTML, entities, tables,
    strikethrough, ``$`` math, and headings, lists and rules at the start of a line.
    """
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", text)
    return _MARKDOWN_LINE_START.sub(_escape_line_start, escaped)


def markdown_list(items: Iterable[str]) -> str:
    """``items`` as literal Markdown text, separated by commas."""
    return ", ".join(markdown_text(item) for item in items)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, marker = match.groups()
    return f"{indent}{marker}\\" if marker[0].isdigit() else f"{indent}\\{marker}"


def markdown_code(text: str) -> str:
    """Text as a Markdown inline code span that shows it exactly, whatever backticks it holds."""
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    padded = text.startswith("`") or text.endswith("`") or (text[:1] == text[-1:] == " ")
    pad = " " if padded else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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
    """A citation's button text: ``[1] Title p. 3`` (no page for unpaged documents), the title escaped."""
    page = f" p. {citation['page']}" if citation["page"] is not None else ""
    return f"[{citation['number']}] {markdown_text(citation['title'])}{page}"


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
