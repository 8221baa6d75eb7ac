"""The evaluation's own error type, raised when a dataset folder cannot be read as one."""

from __future__ import annotations

from agents import MultigrainError

__all__ = ["DatasetError"]


class DatasetError(MultigrainError):
    """An evaluation dataset file is malformed; the message names the file and line."""
