"""Exception types a caller can act on: the retrieval ones plus the model and citation failures."""

from __future__ import annotations

from retrieval.errors import ConfigError, MultigrainError, RetrievalError

__all__ = [
    "CitationError",
    "ConfigError",
    "LLMError",
    "LLMOutputError",
    "MultigrainError",
    "RetrievalError",
    "StageDegradedError",
]


class LLMError(MultigrainError):
    """The model endpoint could not be reached or answered with an HTTP error, after any retries."""

    def __init__(
        self, message: str, *, stage: str, attempts: int, status: int | None, retryable: bool
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.attempts = attempts
        self.status = status
        self.retryable = retryable


class LLMOutputError(LLMError):
    """The model's reply failed validation, even after one corrective re-ask; ``raw_text`` is that reply."""

    def __init__(self, message: str, *, stage: str, raw_text: str, attempts: int = 2) -> None:
        super().__init__(message, stage=stage, attempts=attempts, status=None, retryable=False)
        self.raw_text = raw_text


class CitationError(MultigrainError):
    """An answer cites a passage that was not retrieved or quotes text its passage does not contain."""


class StageDegradedError(MultigrainError):
    """A stage would have fallen back to a weaker method, and strict mode forbids that.

    Every stage raises this one type; ``__cause__`` holds the model failure, if one was the reason.
    """

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
