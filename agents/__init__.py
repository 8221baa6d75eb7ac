"""Multigrain's Python API: an Agent that answers questions over an Index with checked citations.

Names are imported on first use (PEP 562), so ``import agents`` and the CLI's ``--help`` do not pay for
LangGraph, the OpenAI SDK, Chroma and the embedding runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.agent import Agent, Answer, ResetEvent, StepEvent, TokenEvent
    from agents.errors import (
        CitationError,
        ConfigError,
        LLMError,
        LLMOutputError,
        MultigrainError,
        RetrievalError,
    )
    from agents.settings import Settings, load_settings
    from agents.steps import Step
    from retrieval.index import Index

_MODULES = {
    "agents.agent": ("Agent", "Answer", "ResetEvent", "StepEvent", "TokenEvent"),
    "agents.errors": (
        "CitationError",
        "ConfigError",
        "LLMError",
        "LLMOutputError",
        "MultigrainError",
        "RetrievalError",
    ),
    "agents.settings": ("Settings", "load_settings"),
    "agents.steps": ("Step",),
    "retrieval.index": ("Index",),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "Agent",
    "Answer",
    "CitationError",
    "ConfigError",
    "Index",
    "LLMError",
    "LLMOutputError",
    "MultigrainError",
    "ResetEvent",
    "RetrievalError",
    "Settings",
    "Step",
    "StepEvent",
    "TokenEvent",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
