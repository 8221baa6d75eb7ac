"""Prompt templates the product owner edits as plain text, checked against their declared variables.

A prompt file ``prompts/<name>.txt`` starts with a line declaring its variables::

    # variables: question, passages

followed by sections opened by ``[system]``, ``[user]`` or ``[assistant]`` lines. Section text is an f-string
template: ``{question}`` is a variable, ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from prompts.phrases import NO_ANSWER
from retrieval.errors import ConfigError

__all__ = ["NO_ANSWER", "load_prompt", "load_prompt_file", "render"]

_VARIABLES_LINE = re.compile(r"#\s*variables:(?P<names>.*)")
_SECTION_LINE = re.compile(r"\[(?P<role>[a-z]+)\]")
_ROLES = ("system", "user", "assistant")
_PROMPT_NAME = re.compile(r"[a-z0-9_]+")
_ROLE_OF_MESSAGE_TYPE = {"system": "system", "human": "user", "ai": "assistant"}


def load_prompt_file(path: Path) -> ChatPromptTemplate:
    """Load and validate the prompt file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
    return _parse_prompt(text, source=str(path))


@cache
def load_prompt(name: str) -> ChatPromptTemplate:
    """Load and validate the packaged prompt ``prompts/<name>.txt``."""
    if not _PROMPT_NAME.fullmatch(name):
        raise ConfigError(f"prompt name {name!r} is invalid: use lowercase letters, digits and '_'")
    resource = files(__name__) / f"{name}.txt"
    if not resource.is_file():
        raise ConfigError(f"no prompt named {name!r}: {resource} does not exist")
    return _parse_prompt(resource.read_text(encoding="utf-8"), source=str(resource))


def render(name: str, **variables: str) -> list[dict[str, str]]:
    """Fill prompt ``name`` with ``variables`` and return OpenAI-style chat messages."""
    template = load_prompt(name)
    expected = set(template.input_variables)
    if set(variables) != expected:
        raise ConfigError(
            f"prompt {name!r} needs exactly the variables {sorted(expected)}; "
            f"got {sorted(variables)}{_difference(expected, set(variables), 'given')}"
        )
    return [_as_openai_message(message) for message in template.format_messages(**variables)]


def _parse_prompt(text: str, *, source: str) -> ChatPromptTemplate:
    first_line, _, body = text.partition("\n")
    header = _VARIABLES_LINE.fullmatch(first_line.strip())
    if header is None:
        raise ConfigError(f"{source}: the first line must be '# variables: name, ...', not {first_line!r}")
    declared = {name.strip() for name in header["names"].split(",") if name.strip()}
    sections = _split_sections(body, source=source)
    try:
        template = ChatPromptTemplate.from_messages(sections, template_format="f-string")
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"{source}: malformed template ({exc}); write literal braces as {{{{ and }}}}"
        ) from exc
    used = set(template.input_variables)
    if odd := sorted(name for name in used if not name.isidentifier()):
        raise ConfigError(f"{source}: {odd} are not variable names; write literal braces as {{{{ and }}}}")
    if used != declared:
        raise ConfigError(
            f"{source}: declared variables {sorted(declared)} differ from those the text uses {sorted(used)}"
            f"{_difference(declared, used, 'used')}"
        )
    return template


def _split_sections(body: str, *, source: str) -> list[tuple[str, str]]:
    sections: list[tuple[str, list[str]]] = []
    for number, line in enumerate(body.split("\n"), start=2):
        opener = _SECTION_LINE.fullmatch(line.strip())
        if opener is not None:
            if opener["role"] not in _ROLES:
                raise ConfigError(f"{source}:{number}: unknown section [{opener['role']}]; known: {_ROLES}")
            sections.append((opener["role"], []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            raise ConfigError(f"{source}:{number}: text before the first [system] or [user] line")
    if not sections:
        raise ConfigError(f"{source}: no [system], [user] or [assistant] section")
    result = [(role, "\n".join(lines).strip()) for role, lines in sections]
    for role, content in result:
        if not content:
            raise ConfigError(f"{source}: a [{role}] section is empty")
    return result


def _difference(declared: set[str], other: set[str], other_name: str) -> str:
    parts = []
    if missing := sorted(declared - other):
        parts.append(f"declared but not {other_name}: {missing}")
    if extra := sorted(other - declared):
        parts.append(f"{other_name} but not declared: {extra}")
    return " (" + "; ".join(parts) + ")" if parts else ""


def _as_openai_message(message: BaseMessage) -> dict[str, str]:
    if not isinstance(message.content, str):
        raise TypeError(f"prompt produced non-text content of type {type(message.content).__name__}")
    return {"role": _ROLE_OF_MESSAGE_TYPE[message.type], "content": message.content}
