"""Titles people recognise: metadata titles that are identifiers or a producer's noise give way."""

from __future__ import annotations

import re
from collections.abc import Iterable

TITLE_CHARS = 120
_PRODUCER_PREFIX = re.compile(
    r"(?:microsoft (?:word|excel|powerpoint)|word|powerpoint|untitled|document\d*)\b(?:\s*-\s*|$)",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")
_PAGE_NUMBER = re.compile(r"(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?", re.IGNORECASE)
_LABEL = re.compile(r"[^:：]{1,40}[:：]")
_TITLE_FIELD = re.compile(r"(?:[\w ]{0,30}\s)?title\s*[:：]\s*(\S.*)", re.IGNORECASE)
_LINE_WORDS = (3, 15)
"""A line of text may stand as a title when it has this many words, fewer reading as a running head and
more as prose."""
_TITLE_LINES = 15


def short_title(line: str) -> str:
    """``line`` stripped and cut to the length a title may have."""
    return line.strip()[:TITLE_CHARS].rstrip()


def is_recognisable(title: str) -> bool:
    """False for an empty title, an identifier ("0000320193-23-000077", "report_v2.docx") or a producer's
    placeholder ("Microsoft Word - null.doc")."""
    title = title.strip()
    if not title or _PRODUCER_PREFIX.match(title):
        return False
    if any(char.isspace() for char in title):
        return True
    alphanumeric = [char for char in title if char.isalnum()]
    digits = sum(char.isdigit() for char in alphanumeric)
    return not (_FILE_NAME.search(title) or "_" in title or digits * 2 >= len(alphanumeric))


def first_line_title(text: str) -> str | None:
    """The value of a "Title: ..." line among the text's opening lines, else the first of them that reads as
    a title: not a page number, a "Label: value" line, a running head of one or two words, a line going on
    from the one before (lower case) or a line of prose."""
    lines = [line.strip() for line in text.split("\n") if line.strip()][:_TITLE_LINES]
    field = next((match[1] for match in map(_TITLE_FIELD.match, lines) if match), None)
    if field is not None:
        return short_title(field)
    for line in lines:
        words = [word for word in line.split() if any(char.isalpha() for char in word)]
        if _PAGE_NUMBER.fullmatch(line) or _LABEL.match(line) or line[0].islower():
            continue
        if _LINE_WORDS[0] <= len(words) <= _LINE_WORDS[1]:
            return short_title(line)
    return None


def choose_title(candidates: Iterable[str | None], *, fallback: str) -> str:
    """The first recognisable candidate, cut to title length, else ``fallback`` (a file's stem)."""
    for candidate in candidates:
        if candidate and is_recognisable(candidate):
            return short_title(candidate)
    return fallback
