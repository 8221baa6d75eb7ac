from pathlib import Path

import pytest

from agents.errors import ConfigError
from agents.settings import Settings, load_settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_matches_the_settings():
    text = README.read_text()
    table = text.split("<!-- settings-table -->\n", 1)[1].split("\n<!-- /settings-table -->", 1)[0]
    assert table == settings_table()


def test_openai_variables_and_overrides(tmp_path):
    settings = load_settings(
        {"home": str(tmp_path), "rerank": {"k": 3}},
        environ={"OPENAI_API_KEY": "sk-test-123456", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert settings.llm.enabled and not settings.offline
    assert settings.llm.base_url == "http://127.0.0.1:9/v1"
    assert settings.rerank.k == 3
    assert settings.index.home == tmp_path
    assert "sk-test-123456" not in repr(settings) and "sk-test-123456" not in settings.model_dump_json()


def test_invalid_settings_name_the_field():
    with pytest.raises(ConfigError, match="route"):
        load_settings({"route": {"min_docs": 9, "max_docs": 2}}, environ={})
    with pytest.raises(ConfigError, match="chunking"):
        load_settings({"index": {"chunking": {"chunk_tokens": 50, "overlap_tokens": 60}}}, environ={})


def test_a_settings_object_is_returned_as_is_or_with_overrides_validated(tmp_path):
    settings = load_settings({"home": str(tmp_path), "rerank": {"k": 3}}, environ={})
    assert load_settings(settings) is settings
    changed = load_settings(settings, {"rerank": {"window": 4}, "home": str(tmp_path / "other")})
    assert (changed.rerank.k, changed.rerank.window) == (3, 4)
    assert changed.home == changed.index.home == tmp_path / "other"
    assert settings.rerank.window == 10 and settings.home == tmp_path
    with pytest.raises(ConfigError, match="route"):
        load_settings(settings, {"route": {"min_docs": 9, "max_docs": 2}})


def test_home_and_the_chroma_address_are_defined_once_in_the_index_settings(tmp_path):
    assert not {"home", "chroma_host", "chroma_port"} & set(Settings.model_fields)
    settings = load_settings(
        environ={
            "MULTIGRAIN_HOME": str(tmp_path),
            "MULTIGRAIN_CHROMA_HOST": "127.0.0.1",
            "MULTIGRAIN_CHROMA_PORT": "8123",
        }
    )
    assert (settings.home, settings.index.home) == (tmp_path, tmp_path)
    assert (settings.index.chroma_host, settings.index.chroma_port) == ("127.0.0.1", 8123)
    assert load_settings({"index": {"home": str(tmp_path)}}, environ={}).home == tmp_path
    assert load_settings({"home": "b"}, environ={"MULTIGRAIN_HOME": "a"}).index.home == Path("b")
    assert load_settings({"index": {"home": "b"}}, environ={"MULTIGRAIN_HOME": "a"}).home == Path("b")
    dumped = settings.model_dump(mode="json")
    assert dumped["home"] == dumped["index"]["home"] == str(tmp_path)


def test_the_chroma_port_is_checked_wherever_it_is_set():
    with pytest.raises(ConfigError, match="index.chroma_port"):
        load_settings(environ={"MULTIGRAIN_CHROMA_PORT": "70000"})
    with pytest.raises(ConfigError, match="home and index.home are both set"):
        load_settings({"home": "a", "index": {"home": "b"}}, environ={})
