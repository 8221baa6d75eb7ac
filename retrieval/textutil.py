"""Word-level helpers shared by profiles, expansion and the lexical checks."""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_][\w'-]*", re.UNICODE)
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves one two may might must shall us many much new used use
    using like well however thus within without among upon via per whose tell name named known called
    """.split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning: no stop words, no single letters."""
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 1]
