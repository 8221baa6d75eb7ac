"""Settings from the environment: which variable wins, and unknown MULTIGRAIN_* names refused with a hint."""

from __future__ import annotations

import pytest

from agents.errors import ConfigError
from agents.settings import load_settings


def test_multigrain_llm_variables_win_over_openai_ones():
    settings = load_settings(
        environ={
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "OPENAI_API_KEY": "sk-openai-000000",
            "MULTIGRAIN_LLM__BASE_URL": "http://127.0.0.1:8/v1",
            "MULTIGRAIN_LLM__API_KEY": "sk-multigrain-111111",
        }
    )
    assert settings.llm.base_url == "http://127.0.0.1:8/v1"
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == "sk-multigrain-111111"


def test_openai_variables_fill_in_what_multigrain_ones_leave_unset():
    settings = load_settings(
        environ={"OPENAI_API_KEY": "sk-openai-000000", "MULTIGRAIN_LLM__BASE_URL": "http://127.0.0.1:8/v1"}
    )
    assert settings.llm.base_url == "http://127.0.0.1:8/v1"
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == "sk-openai-000000"


def test_overrides_win_over_the_environment_and_nested_groups_merge(tmp_path):
    settings = load_settings(
        {"home": str(tmp_path), "llm": {"model": "m"}, "index": {"embedding": {"model": "e"}}},
        environ={
            "MULTIGRAIN_LLM__MODEL": "env-model",
            "MULTIGRAIN_LLM__BASE_URL": "http://127.0.0.1:8/v1",
            "MULTIGRAIN_INDEX__EMBEDDING__BATCH_SIZE": "7",
            "MULTIGRAIN_RERANK__K": "3",
        },
    )
    assert settings.llm.model == "m"
    assert settings.llm.base_url == "http://127.0.0.1:8/v1"
    assert (settings.index.embedding.model, settings.index.embedding.batch_size) == ("e", 7)
    assert settings.rerank.k == 3


def test_the_environ_argument_is_read_instead_of_the_process_environment(monkeypatch):
    monkeypatch.setenv("MULTIGRAIN_RERANK__K", "4")
    assert load_settings(environ={"MULTIGRAIN_RERANK__K": "6"}).rerank.k == 6
    assert load_settings().rerank.k == 4


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("MULTIGRAIN_RERANK__KK", "MULTIGRAIN_RERANK__K"),
        ("MULTIGRAIN_EMBEDDING__BASE_URL", "MULTIGRAIN_INDEX__EMBEDDING__BASE_URL"),
        ("MULTIGRAIN_MAX_LLM_CALL", "MULTIGRAIN_MAX_LLM_CALLS"),
        ("multigrain_rerank_k", "MULTIGRAIN_RERANK__K"),
    ],
)
def test_an_unknown_variable_is_named_with_the_closest_real_one(variable, suggestion):
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={variable: "3"})
    assert variable in str(raised.value)
    assert f"did you mean {suggestion}?" in str(raised.value)


def test_an_unknown_variable_in_the_process_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MULTIGRAIN_RERANK__KK", "3")
    with pytest.raises(ConfigError, match="MULTIGRAIN_RERANK__KK: did you mean MULTIGRAIN_RERANK__K"):
        load_settings()


def test_a_variable_with_nothing_like_it_says_so():
    with pytest.raises(ConfigError, match="MULTIGRAIN_ZZZ: no setting has a name like it"):
        load_settings(environ={"MULTIGRAIN_ZZZ": "1"})


def test_a_whole_group_can_be_given_as_json():
    settings = load_settings(environ={"MULTIGRAIN_RERANK": '{"k": 5, "window": 4}'})
    assert (settings.rerank.k, settings.rerank.window) == (5, 4)
    with pytest.raises(ConfigError, match="MULTIGRAIN_RERANK must be a JSON object"):
        load_settings(environ={"MULTIGRAIN_RERANK": "k=5"})
