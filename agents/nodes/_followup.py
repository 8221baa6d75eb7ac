"""Whether a question leans on the conversation before it, and the offline way to make it stand alone.

A question needs the thread when it has a pronoun with nothing in the question to refer to ("How cold is it
kept?"), when it continues the previous one ("And in 2022?", "What about the mirror?"), or when it is a
bare fragment ("Why?", "The mirror?"). A self-contained question ("Who deciphered the hieroglyphs?") is
left as it is, whatever was asked before.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.textutil import STOPWORDS, WORD, content_words, words

ENTITY_PRONOUNS = frozenset(
    "it its itself they them their theirs themselves he she his her him hers himself herself".split()
)
ANAPHORA = ENTITY_PRONOUNS | frozenset("this that these those there".split())
CONTINUATIONS = (
    ("and",),
    ("but",),
    ("or",),
    ("also",),
    ("what", "about"),
    ("how", "about"),
    ("what", "of"),
    ("what", "else"),
    ("same", "for"),
)
OPENERS = frozenset(
    "who whom whose what which when where why how is are was were do does did can could".split()
)
_EXISTENTIAL = frozenset("is are was were be been".split())
_THREAD_TURNS = 3


def needs_thread(question: str) -> bool:
    """True when ``question`` cannot be understood without the conversation before it."""
    tokens = words(question)
    if not tokens:
        return False
    return _continues(tokens) or _is_fragment(tokens) or bool(_unresolved_pronouns(tokens))


def offline_standalone(question: str, history: Sequence[dict[str, str]]) -> str:
    """``question`` followed by what it leaves out of the thread, when it needs the thread; else unchanged.

    A pronoun for a thing ("How cold is it kept?") stands for the name the thread is about ("JWST"). An
    ellipsis that brings a new subject ("What about honeybees?", "And in 2022?") reuses the earlier
    question's other words but not its names; a bare "Why?" reuses all of them.
    """
    if not history or not needs_thread(question):
        return question
    topic = [turn["question"] for turn in _topic_turns(history)]
    earlier = [w for text in topic for w in content_words(text)]
    asked = set(content_words(question))
    if _unresolved_pronouns(words(question)) & ENTITY_PRONOUNS:
        earlier = [w for text in topic for w in _subject(text)] or earlier
    elif asked:
        names = {name for text in topic for name in _names(text)}
        earlier = [w for w in earlier if w.removesuffix("'s") not in names] or earlier
    added = [w for w in dict.fromkeys(earlier) if w not in asked]
    return f"{question} ({' '.join(added)})" if added else question


def _subject(text: str) -> list[str]:
    """The first name in ``text``, all its words ("rosetta stone"), up to a possessive ("JWST's MIRI")."""
    names = _names(text)
    tokens = words(text)
    start = next((i for i, t in enumerate(tokens) if t.removesuffix("'s") in names), len(tokens))
    subject: list[str] = []
    for token in tokens[start:]:
        if token.removesuffix("'s") not in names:
            break
        subject.append(token.removesuffix("'s"))
        if token.endswith("'s"):
            break
    return subject


def _names(text: str) -> set[str]:
    """Lower-cased proper names and acronyms: capitalised words after the first, all-capital words."""
    found = [w.removesuffix("'s") for w in WORD.findall(text)]
    return {
        w.lower()
        for i, w in enumerate(found)
        if ((i > 0 and w[0].isupper()) or (len(w) > 1 and w.isupper())) and w.lower() not in STOPWORDS
    }


def _topic_turns(history: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The last turns back to and including the most recent self-contained question, oldest first."""
    turns: list[dict[str, str]] = []
    for turn in reversed(history[-_THREAD_TURNS:]):
        turns.insert(0, turn)
        if not needs_thread(turn["question"]):
            break
    return turns


def _is_content(token: str) -> bool:
    return token not in STOPWORDS and len(token) > 1


def _content(tokens: Sequence[str]) -> list[str]:
    return [t for t in tokens if _is_content(t)]


def _continues(tokens: Sequence[str]) -> bool:
    return any(tuple(tokens[: len(opening)]) == opening for opening in CONTINUATIONS)


def _is_fragment(tokens: Sequence[str]) -> bool:
    """At most one meaningful word, and either no more than two words or no question opener."""
    return len(_content(tokens)) <= 1 and (len(tokens) <= 2 or tokens[0] not in OPENERS)


def _unresolved_pronouns(tokens: Sequence[str]) -> set[str]:
    """The pronouns with no earlier noun in the question that they could stand for.

    A meaningful word counts as a pronoun's antecedent only when another meaningful word (the verb)
    stands between them: "How does the telescope keep its mirror cold?" resolves "its", while "What is the
    size of its mirror?" and "How cold is it kept?" do not.
    """
    return {
        token
        for position, token in enumerate(tokens)
        if token in ANAPHORA
        and not _refers_to_nothing(tokens, position)
        and len(_content(tokens[:position])) < 2
    }


def _refers_to_nothing(tokens: Sequence[str], position: int) -> bool:
    """'there' in "is there" or "there are", or 'that' after a word ("the enzyme that", "showed that")."""
    previous = tokens[position - 1] if position else ""
    if tokens[position] == "that":
        return bool(previous) and _is_content(previous)
    if tokens[position] != "there":
        return False
    following = tokens[position + 1] if position + 1 < len(tokens) else ""
    return previous in _EXISTENTIAL or following in _EXISTENTIAL
