"""Exception types a caller can act on. The agents package re-exports and extends them."""

from __future__ import annotations


class MultigrainError(Exception):
    """Base class of every error Multigrain raises on purpose."""


class ConfigError(MultigrainError):
    """A setting is missing or invalid; the message names it."""


class RetrievalError(MultigrainError):
    """The index or a search over it failed."""


class LoaderError(MultigrainError):
    """A file could not be turned into a document; the message is the one-line reason shown to the user."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexBusyError(RetrievalError):
    """Another process holds the index's write lock."""
