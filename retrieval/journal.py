"""A small SQLite journal of documents whose writes are under way, so a killed ingestion can be undone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

JOURNAL_FILE = "journal.sqlite"


class Journal:
    """Doc ids whose entries in the store may be incomplete until they are marked done."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with closing(self._connect()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS pending (doc_id TEXT PRIMARY KEY)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, isolation_level=None, timeout=30)

    def begin(self, doc_ids: Iterable[str]) -> None:
        """Record that these documents are about to be rewritten."""
        with closing(self._connect()) as db:
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", [(d,) for d in doc_ids])

    def done(self, doc_ids: Iterable[str]) -> None:
        """Record that these documents' writes are complete."""
        with closing(self._connect()) as db:
            db.executemany("DELETE FROM pending WHERE doc_id = ?", [(d,) for d in doc_ids])

    def pending(self) -> list[str]:
        """Documents left half-written by a process that stopped."""
        with closing(self._connect()) as db:
            return [row[0] for row in db.execute("SELECT doc_id FROM pending ORDER BY doc_id")]
