"""Multigrain's Python API: an Agent that answers questions over an Index with checked citations."""

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
from retrieval.index import Index

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
    "StepEvent",
    "TokenEvent",
    "load_settings",
]
