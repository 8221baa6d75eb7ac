"""What kind of thing a question asks for: a figure ("How many sites…?", "What IRB number…?") or a date
("When does the study period end?"), and whether a unit of text holds one the question does not name.

The kind is a prior, not a filter: prose is full of figures, so a unit holding one only moves up among
units that are otherwise close ("How many Grammys has Lady Gaga won?" still wants the sentence about
Gaga, not the one about 6½ sacks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ASKS_DATE = re.compile(
    r"\b(?:when|what (?:time|year|date|day|month)|in what year|on what date)\b", re.IGNORECASE
)
_ASKS_FIGURE = re.compile(
    r"\b(?:how (?:many|much|far|long|old|often|tall|high|fast|heavy|large|big|deep)|"
    r"total|amount|elevation|altitude|temperature|speed|distance|weight|height|percentage|number of|"
    r"(?:what|which)(?: [\w'-]+){0,3} (?:number|code|version|dose|score|size|amount|age|percentage|rate|"
    r"date|duration|period))\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b\d{1,2}:\d{2}\b|\b(?:1[6-9]|20)\d{2}s?\b",
    re.IGNORECASE,
)
_FIGURE = re.compile(
    r"\d+(?:[.,:/]\d+)*|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    r"hundred|thousand|million|billion|twice|dozens?)\b",
    re.IGNORECASE,
)
"""A figure in digits or in words ("four", "twice"): Wikipedia spells small numbers out."""


@dataclass(frozen=True)
class AskedKind:
    """The pattern of what a question asks for, and the instances of it the question itself names."""

    pattern: re.Pattern[str]
    named: frozenset[str]

    @classmethod
    def of(cls, question: str, pattern: re.Pattern[str]) -> AskedKind:
        """What ``pattern`` finds, as asked by ``question``."""
        return cls(pattern=pattern, named=frozenset(found.lower() for found in pattern.findall(question)))

    def held_by(self, text: str) -> bool:
        """Whether ``text`` holds an instance the question does not name ("2" in "2-point" is named)."""
        return any(found.lower() not in self.named for found in self.pattern.findall(text))


def asked_kind(question: str) -> AskedKind | None:
    """The kind of thing ``question`` asks for, or None when it asks for neither a figure nor a date."""
    if ASKS_DATE.search(question):
        pattern = _DATE
    elif _ASKS_FIGURE.search(question):
        pattern = _FIGURE
    else:
        return None
    return AskedKind.of(question, pattern)
