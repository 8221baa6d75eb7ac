from pathlib import Path

import pytest

from agents.errors import ConfigError
from agents.settings import load_settings, settings_table

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
