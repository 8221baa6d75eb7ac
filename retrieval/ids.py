"""Unit ids: ``<doc_id>#<letter><ordinal>``, a section ``s``, a chunk ``c`` or a sentence ``t``.

A document id may itself hold ``#`` (a corpus line's id is its file's id, ``#`` and its ``_id``), so an id
is read from its last ``#``.
"""

from __future__ import annotations

from retrieval.models import UnitKind

_LETTER: dict[UnitKind, str] = {"section": "s", "chunk": "c", "sentence": "t"}
_KIND: dict[str, UnitKind] = {letter: kind for kind, letter in _LETTER.items()}


def unit_id(doc_id: str, kind: UnitKind, ordinal: int) -> str:
    """The id of a document's ``ordinal``-th section, chunk or sentence."""
    return f"{doc_id}#{_LETTER[kind]}{ordinal}"


def parse_unit_id(value: str) -> tuple[str, UnitKind, int]:
    """A unit id's document id, kind and ordinal; ValueError when ``value`` is not a unit id."""
    doc_id, sep, tail = value.rpartition("#")
    if not sep or tail[:1] not in _KIND or not tail[1:].isdigit():
        raise ValueError(f"not a unit id: {value!r}")
    return doc_id, _KIND[tail[:1]], int(tail[1:])
