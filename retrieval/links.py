"""Links between documents: which stored documents a text names by their title.

A passage that names another document ("... starring Halina Reijn") points at evidence that a search for
the question's own words may never find; a question that names a document says which one it is about.
Titles are matched as whole words, case-insensitively, and a name must point at one document: a title
that several documents share ("Form 10-K") names none of them. A title's disambiguation in parentheses
("Black Book (film)") may be left out, unless another document is called by what remains; and a one-word
title counts only where the text capitalises it, so "notes" in a sentence does not name a file "Notes".
A document is also named by an identifier in its file name ("NCT06152666" for
"docs/NCT06152666_Prot_000.pdf", "CEN19FA123"): a word of five characters or more holding a digit that no
other document's file name holds, since people call a protocol or a report by its number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_WORD = re.compile(r"\w+")
_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")
_IDENTIFIER = re.compile(r"[^\W_]+")
MIN_IDENTIFIER_CHARS = 5
MAX_TITLE_WORDS = 12
MIN_TITLE_CHARS = 3


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


@dataclass
class TitleIndex:
    """Every document's title, looked up by the word sequences of a text."""

    titles: dict[str, str]
    _by_name: dict[tuple[str, ...], str | None] = field(init=False, repr=False)
    _longest: int = field(init=False, repr=False)
    _by_identifier: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        full: dict[tuple[str, ...], list[str]] = {}
        short: dict[tuple[str, ...], list[str]] = {}
        for doc_id, title in self.titles.items():
            full.setdefault(tuple(_words(title)), []).append(doc_id)
            short.setdefault(tuple(_words(_DISAMBIGUATION.sub("", title))), []).append(doc_id)
        owners = {**short, **full}  # a full title outranks the same words left after a disambiguation
        self._by_name = {
            name: doc_ids[0] if len(doc_ids) == 1 else None  # None: a name, but of several documents
            for name, doc_ids in owners.items()
            if _nameable(name)
        }
        self._longest = max((len(name) for name in self._by_name), default=0)
        holders: dict[str, list[str]] = {}
        for doc_id in self.titles:
            for identifier in _file_identifiers(doc_id):
                holders.setdefault(identifier, []).append(doc_id)
        self._by_identifier = {name: ids[0] for name, ids in holders.items() if len(ids) == 1}

    @classmethod
    def load(cls, path: Path) -> TitleIndex:
        """Read titles written by :meth:`save`."""
        return cls(titles=json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        """Write the titles to ``path`` as JSON."""
        path.write_text(json.dumps(self.titles, ensure_ascii=False), encoding="utf-8")

    def named_in(self, text: str, *, exclude: Iterable[str] = ()) -> list[str]:
        """Ids of the documents whose title ``text`` names, in order of first mention."""
        skip = set(exclude)
        raw = _WORD.findall(text)
        words = [w.lower() for w in raw]
        found: dict[str, None] = {}
        start = 0
        while start < len(words):
            length = self._longest_name_at(words, start, capitalised=raw[start][0].isupper())
            doc_id = self._by_name[tuple(words[start : start + length])] if length else None
            if doc_id is None and not length:
                doc_id = self._by_identifier.get(words[start])
            if doc_id is not None:
                found[doc_id] = None
            start += length or 1
        return [d for d in found if d not in skip]

    def _longest_name_at(self, words: list[str], start: int, *, capitalised: bool) -> int:
        """Length of the longest title starting at ``words[start]``; 0 when none does."""
        for length in range(min(self._longest, len(words) - start), 0, -1):
            if (length > 1 or capitalised) and tuple(words[start : start + length]) in self._by_name:
                return length
        return 0


def _file_identifiers(doc_id: str) -> set[str]:
    """The lower-cased words of a document's file name that can identify it: long enough, with a digit."""
    stem = PurePosixPath(doc_id).stem
    return {
        word.lower()
        for word in _IDENTIFIER.findall(stem)
        if len(word) >= MIN_IDENTIFIER_CHARS and any(char.isdigit() for char in word)
    }


def _nameable(name: tuple[str, ...]) -> bool:
    """Whether a title is specific enough to count as a mention: not too long, not a bare short word."""
    return 0 < len(name) <= MAX_TITLE_WORDS and len(" ".join(name)) >= MIN_TITLE_CHARS
