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
from agents.steps import Step


def build_graph(checkpoint_path: Path | None) -> Any:
    """The compiled graph; conversations persist in SQLite at ``checkpoint_path`` when given."""
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node(Step.EXPAND, expand_query)
    builder.add_node(Step.ROUTE, route_documents)
    builder.add_node(Step.RETRIEVE, retrieve_chunks)
    builder.add_node(Step.RERANK, rerank_passages)
    builder.add_node(Step.ANSWER, answer_question)
    builder.add_node(Step.VERIFY, verify_answer)
    builder.add_node(Step.FINISH, remember_turn)
    builder.add_edge(START, Step.EXPAND)
    builder.add_edge(Step.EXPAND, Step.ROUTE)
    builder.add_edge(Step.ROUTE, Step.RETRIEVE)
    builder.add_edge(Step.RETRIEVE, Step.RERANK)
    builder.add_edge(Step.RERANK, Step.ANSWER)
    builder.add_edge(Step.ANSWER, Step.VERIFY)
    builder.add_conditional_edges(
        Step.VERIFY, route_after_verify, {"answer": Step.ANSWER, "end": Step.FINISH}
    )
    builder.add_edge(Step.FINISH, END)
    checkpointer = None
    if checkpoint_path is not None:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        checkpointer = SqliteSaver(sqlite3.connect(str(checkpoint_path), check_same_thread=False))
    return builder.compile(checkpointer=checkpointer)
