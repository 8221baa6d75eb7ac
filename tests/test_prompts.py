"""The prompt loader: packaged prompts, declared variables, and the errors a prompt editor sees."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agents.nodes.verify import _feedback
from agents.state import AnswerSentence, Citation
from prompts import load_prompt, load_prompt_file, phrases, render, schemas
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


ROOT = Path(__file__).resolve().parents[1]


def test_reply_schemas_live_in_prompts_not_in_the_nodes():
    defined = [
        f"{path.name}:{node.name}"
        for path in sorted((ROOT / "agents" / "nodes").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base) == "BaseModel" for base in node.bases)
    ]
    assert defined == []
    replies = {"Rewrites", "Standalone", "DocumentChoice", "WindowJudgement", "Judgements"}
    assert replies <= set(schemas.__all__)


def fixed_part(phrase: str) -> str:
    """The longest stretch of a phrase that is not a {variable}."""
    return max(re.split(r"\{[a-z_]+\}", phrase), key=len).strip()


WORDED_PHRASES = [name for name in phrases.__all__ if len(fixed_part(getattr(phrases, name))) >= 12]


@pytest.mark.parametrize("name", WORDED_PHRASES)
def test_each_fixed_phrase_is_written_once_in_prompts(name):
    words = fixed_part(getattr(phrases, name))
    writers = [
        str(path.relative_to(ROOT))
        for folder in ("agents", "ui", "evaluation")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if words in path.read_text(encoding="utf-8")
    ]
    assert writers == []


def test_verify_feedback_to_the_answer_retry_reads_as_before():
    sentences = [
        AnswerSentence(text="Bees dance [1].", citations=[1], verdict="supported", support=0.9),
        AnswerSentence(text="The moon is cheese [1][2].", citations=[1, 2], verdict="unsupported", support=0),
        AnswerSentence(text="Mars is red [3].", citations=[3], verdict="unsupported", support=0.0),
        AnswerSentence(text="Rome fell [2].", citations=[2], verdict="unsupported", support=0.2),
    ]
    cited = Citation(  # only the number matters to the feedback
        number=1, chunk_id="a#c0", doc_id="a", title="A", page=None, section="", start=0, end=1,
        quote="", verdict="unsupported", support=0.1,
    )
    checked = [[cited], [cited, {**cited, "number": 2}], [], [{**cited, "number": 2}]]
    removed = [{"sentence": 2, "number": 3, "why": "never retrieved"}]
    assert _feedback(sentences, checked, removed) == (
        "These sentences of your previous answer are not supported by the sources they cite:\n"
        '- "The moon is cheese.": cites [1][2], but those sources do not state it.\n'
        '- "Mars is red.": cites no valid source: removed [3] (never retrieved).\n'
        '- "Rome fell.": cites [2], but that source does not state it.\n'
        "Write the answer again: keep only what the sources state, cite the source that states each "
        'sentence, or reply exactly "The documents do not answer this question." if the sources do not '
        "answer the question."
    )
