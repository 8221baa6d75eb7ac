"""The question's focus inside one document: its words once the words that name the document are set aside.

A question names its document and asks for one thing in it: "How many hours in the make and model did the
pilot of Vans RV-8 N103JT have at the time of the accident at Latrobe, PA?". A document says what it is at
its top (a report's first lines, a protocol's title page, an article's title and opening sentence), so the
question's words found there name the document ("Vans", "RV-8", "N103JT", "Latrobe"), and the rest say what
is asked ("hours", "make", "model"). Once the document is chosen, its units are told apart by the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.nodes._text import key_terms
from retrieval.hits import SentenceVector

OPENING_UNITS = 8
"""How many of a document's first sentences and rows say what it is."""
NAMING_SHARE = 0.5
"""A word most documents hold ("accident", "time" in a set of accident reports) names none of them."""


@dataclass(frozen=True)
class Focus:
    """What a question asks for inside one document."""

    terms: set[str]
    """Stems of the question's key terms that do not name the document (all of them when every one does)."""
    text: str
    """The question without the words that name the document."""


def focus_in(
    question: str,
    units: list[SentenceVector],
    *,
    title: str,
    share: Callable[[set[str]], dict[str, float]],
) -> Focus:
    """The question's focus in a document with this title and these units in text order; ``share`` tells
    what share of the corpus's documents hold each term.

    A question names its document with a word few documents hold ("N103JT", "Latrobe"); without one, the
    words it shares with the opening are what it asks about ("What time did the accident happen?" against
    a "Date & Time:" line). With one, every word it shares with the opening is set aside: the opening's
    lines name the document, and the question's generic words there ("time", "accident") would match
    those lines rather than the one that answers. A focus the document's text does not hold is no focus:
    the question is then taken whole."""
    asked = key_terms(question)
    opening = units[:OPENING_UNITS]
    heads = key_terms(" ".join([title, *(unit.reading for unit in opening if _is_heading(unit))]))
    words = question.split()
    naming = asked & heads
    names = [t for t, held_by in share(naming).items() if held_by <= NAMING_SHARE]
    body = key_terms(" ".join(unit.reading for unit in units[OPENING_UNITS:]))
    if not names or not (asked - naming) & body:
        return Focus(terms=asked, text=question)
    kept = [word for word in words if not _names(word, naming)]
    return Focus(terms=asked - naming, text=" ".join(kept))


def _is_heading(unit: SentenceVector) -> bool:
    """A title-page line, a form line or a table row rather than a sentence of prose: the kind of line with
    which a document says what it is, where an article's opening sentences already tell its story."""
    text = unit.text.strip()
    letters = [char for char in text if char.isalpha()]
    shouting = bool(letters) and sum(char.isupper() for char in letters) > len(letters) / 2
    return unit.role == "row" or shouting or not text.endswith((".", "!", "?", '."', ".)"))


def _names(word: str, naming: set[str]) -> bool:
    return bool(key_terms(word) & naming)
