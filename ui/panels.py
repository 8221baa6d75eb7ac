"""How one answer's steps are drawn in Streamlit: under each answer, ``trace_panels`` opens one expander
per pipeline step (query expansion, routing, retrieval, rerank, answer and verification, then the time,
LLM calls and tokens of each step), in pipeline order, each saying first why its step degraded, if it did.
The rows and labels are computed without Streamlit in ``ui.view``; this module only lays them out,
and ``app.py`` keeps the page, the chat, the sidebar and the library.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from agents import Answer
from ui import view

__all__ = ["PANELS", "trace_panels"]


def _degraded(answer: Answer, step: str) -> None:
    entry = view.trace_entry(answer.trace, step)
    for why in entry["degraded"] if entry else []:
        st.warning(f"{step} degraded: {view.markdown_text(why)}")


def _table(rows: list[dict[str, Any]]) -> None:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _expansion(answer: Answer) -> None:
    _degraded(answer, "expand")
    _table(view.expansion_rows(answer.variants))


def _routing(answer: Answer) -> None:
    _degraded(answer, "route")
    if not answer.routed:
        st.info("Routing was off: the whole library was searched.")
        return
    left, right = st.columns(2)
    left.metric("Confidence", f"{answer.route_confidence:.2f}")
    right.metric("Widened", "yes" if answer.widened else "no")
    rows = view.routing_rows(answer.routed)
    st.bar_chart(pd.DataFrame(rows), x="document", y="score", color="status", horizontal=True, sort="-score")
    _table(rows)


def _retrieval(answer: Answer) -> None:
    _degraded(answer, "retrieve")
    tables = view.retrieval_tables(answer.retrieved_by_variant, answer.variants, view.chunk_titles(answer))
    for name, rows in tables.items():
        st.markdown(f"**{view.markdown_text(name)}**")
        _table(rows)
    st.markdown("**After fusion**")
    _table(view.fused_rows(answer.retrieved, answer.trace))


def _rerank(answer: Answer) -> None:
    _degraded(answer, "rerank")
    entry = view.trace_entry(answer.trace, "rerank")
    if entry is not None and entry["skipped"]:
        st.info("Rerank was off for this answer: the passages kept their retrieval order.")
    _table(view.rerank_rows(answer.trace, view.chunk_titles(answer)))


def _verification(answer: Answer) -> None:
    _degraded(answer, "answer")
    _degraded(answer, "verify")
    _table(view.sentence_rows(answer.sentences))
    entry = view.trace_entry(answer.trace, "verify")
    for removed in entry["outputs"].get("removed", []) if entry else []:
        where = f"sentence {removed['sentence'] + 1}"
        why = view.markdown_text(removed["why"])
        st.warning(f"Citation [{removed['number']}] removed from {where}: {why}")


def _steps(answer: Answer) -> None:
    rows = view.step_rows(answer.trace)
    _table(rows)
    seconds, calls, tokens = (sum(r[name] for r in rows) for name in ("seconds", "LLM calls", "tokens"))
    totals = f"{seconds:.2f} s · {calls} LLM calls · {tokens} tokens"
    st.caption(f"Total: {totals} · {view.markdown_text(answer.mode)}")


PANELS = (
    ("Query expansion", _expansion),
    ("Routing", _routing),
    ("Retrieval", _retrieval),
    ("Rerank", _rerank),
    ("Answer & verification", _verification),
    ("Steps: time, LLM calls, tokens", _steps),
)


def trace_panels(answer: Answer) -> None:
    """Draw one collapsed expander per pipeline step, in pipeline order, with that step's details."""
    for title, panel in PANELS:
        with st.expander(title):
            panel(answer)
