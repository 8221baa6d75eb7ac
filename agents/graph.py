"""Wiring only: the nodes, their order, the one bounded retry, and the checkpointer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from agents.context import RunContext
from agents.nodes.answer import answer_question
from agents.nodes.expand import expand_query
from agents.nodes.finish import remember_turn
from agents.nodes.rerank import rerank_passages
from agents.nodes.retrieve import retrieve_chunks
from agents.nodes.route import route_documents
from agents.nodes.verify import route_after_verify, verify_answer
from agents.state import AgentState

STEPS = ("expand", "route", "retrieve", "rerank", "answer", "verify")


def build_graph(checkpoint_path: Path | None) -> Any:
    """The compiled graph; conversations persist in SQLite at ``checkpoint_path`` when given."""
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node("expand", expand_query)
    builder.add_node("route", route_documents)
    builder.add_node("retrieve", retrieve_chunks)
    builder.add_node("rerank", rerank_passages)
    builder.add_node("answer", answer_question)
    builder.add_node("verify", verify_answer)
    builder.add_node("finish", remember_turn)
    builder.add_edge(START, "expand")
    builder.add_edge("expand", "route")
    builder.add_edge("route", "retrieve")
    builder.add_edge("retrieve", "rerank")
    builder.add_edge("rerank", "answer")
    builder.add_edge("answer", "verify")
    builder.add_conditional_edges("verify", route_after_verify, {"answer": "answer", "end": "finish"})
    builder.add_edge("finish", END)
    checkpointer = None
    if checkpoint_path is not None:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        checkpointer = SqliteSaver(sqlite3.connect(str(checkpoint_path), check_same_thread=False))
    return builder.compile(checkpointer=checkpointer)
