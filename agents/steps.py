"""The graph's step names, in one place; a light module, so the UI and the CLI can import it cheaply."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SWITCHABLE_STEPS", "Step", "TRACED_STEPS"]


class Step(StrEnum):
    """A node of the graph, in the order a question runs through them; the value is its trace name."""

    EXPAND = "expand"
    ROUTE = "route"
    RETRIEVE = "retrieve"
    RERANK = "rerank"
    ANSWER = "answer"
    VERIFY = "verify"
    FINISH = "finish"


TRACED_STEPS: tuple[Step, ...] = tuple(step for step in Step if step is not Step.FINISH)
"""The steps that write a trace entry, in order (finish only keeps the turn in the thread's history)."""

SWITCHABLE_STEPS: tuple[Step, ...] = (Step.EXPAND, Step.ROUTE, Step.RERANK, Step.VERIFY)
"""The steps a ``<step>.enabled`` setting turns off."""
