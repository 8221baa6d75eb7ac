"""The prompt loader: packaged prompts, declared variables, and the errors a prompt editor sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompts import load_prompt, load_prompt_file, render
from retrieval.errors import ConfigError


def write_prompt(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_ping_prompt_renders_as_openai_messages():
    assert render("ping") == [
        {"role": "system", "content": "You are a connection check. Reply with the single word: pong"},
        {"role": "user", "content": "ping"},
    ]
    assert load_prompt("ping") is load_prompt("ping")


def test_file_with_variables_roles_and_literal_braces(tmp_path):
    path = write_prompt(
        tmp_path,
        "# variables: question, passages\n"
        "[system]\n"
        'Answer as JSON like {{"answer": "..."}}.\n'
        "\n"
        "[user]\n"
        "Passages:\n{passages}\n\nQuestion: {question}\n"
        "[assistant]\n"
        "Understood.\n",
    )
    template = load_prompt_file(path)
    assert sorted(template.input_variables) == ["passages", "question"]
    messages = template.format_messages(question="Why {x}?", passages="[c1] text")
    assert [message.type for message in messages] == ["system", "human", "ai"]
    assert messages[0].content == 'Answer as JSON like {"answer": "..."}.'
    assert messages[1].content == "Passages:\n[c1] text\n\nQuestion: Why {x}?"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# variables: question\n[user]\n{question} {passages}", "used but not declared: ['passages']"),
        ("# variables: question, passages\n[user]\n{question}", "declared but not used: ['passages']"),
        ("[user]\n{question}", "the first line must be '# variables: name, ...'"),
        ('# variables: question\n[user]\nJSON {question} like {"a": 1}', "write literal braces as {{ and }}"),
        ("# variables:\n[tool]\nhello", "custom.txt:2: unknown section [tool]"),
        ("# variables:\nhello\n[user]\nhi", "custom.txt:2: text before the first [system] or [user] line"),
        ("# variables:\n[system]\n\n[user]\nhi", "a [system] section is empty"),
        ("# variables:\n", "no [system], [user] or [assistant] section"),
    ],
)
def test_bad_prompt_file_names_file_and_problem(tmp_path, text, message):
    path = write_prompt(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_prompt_file(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"), [("no_such_prompt", "no prompt named 'no_such_prompt'"), ("../ping", "is invalid")]
)
def test_unknown_or_unsafe_prompt_name_is_a_config_error(name, message):
    with pytest.raises(ConfigError, match=message):
        load_prompt(name)


def test_render_rejects_variables_the_prompt_does_not_declare():
    with pytest.raises(ConfigError, match=r"given but not declared: \['question'\]"):
        render("ping", question="why?")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read prompt file"):
        load_prompt_file(tmp_path / "absent.txt")
