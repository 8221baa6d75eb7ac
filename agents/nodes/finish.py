"""Finish: remember the turn so a follow-up question can refer to it."""

from __future__ import annotations

from typing import Any

from agents.state import AgentState


def remember_turn(state: AgentState) -> dict[str, Any]:
    """Append this question and its final answer to the thread's history."""
    return {"history": [{"question": state["question"], "answer": state.get("answer_text", "")}]}
