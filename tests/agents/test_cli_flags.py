"""Flags generated from the settings: what each one sets, and help that reads as what the flag does."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from agents._flags import SettingFlag, flag_help, setting_field, with_setting_flags
from agents.cli import ASK_SIZES, MODEL_FLAGS, STAGE_SWITCHES

runner = CliRunner()


def command_receiving(*flags: SettingFlag) -> tuple[typer.Typer, list[dict[str, Any]]]:
    """A one-command app with ``flags`` that records the overrides and its own option it was given."""
    app = typer.Typer()
    received: list[dict[str, Any]] = []

    @app.command()
    @with_setting_flags(*flags)
    def run(name: str = "x", *, overrides: dict[str, Any]) -> None:
        received.append({"name": name, "overrides": overrides})

    return app, received


def test_given_flags_become_nested_overrides_and_absent_ones_set_nothing():
    app, received = command_receiving(*STAGE_SWITCHES, *ASK_SIZES, *MODEL_FLAGS)
    result = runner.invoke(app, ["--name", "y", "--no-verify", "--rerank-k", "3", "--k", "7", "--model", "m"])
    assert result.exit_code == 0, result.output
    assert received == [
        {
            "name": "y",
            "overrides": {
                "verify": {"enabled": False},
                "rerank": {"k": 3},
                "retrieve": {"k": 7},
                "llm": {"model": "m"},
            },
        }
    ]
    assert runner.invoke(app, []).exit_code == 0
    assert received[-1]["overrides"] == {}


def test_a_flag_takes_its_settings_type():
    app, _ = command_receiving(*ASK_SIZES)
    result = runner.invoke(app, ["--route-min", "many"], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "Invalid value for '--route-min': Input should be a valid integer" in result.output


@pytest.mark.parametrize("flag", [*ASK_SIZES, *MODEL_FLAGS], ids=lambda flag: flag.path)
def test_a_value_flag_shows_its_settings_description_and_default(flag):
    field = setting_field(flag.path)
    default = "unset" if field.default is None else field.default
    assert flag_help(flag) == f"{field.description} ({flag.path}, default {default})"


@pytest.mark.parametrize("flag", STAGE_SWITCHES, ids=lambda flag: flag.path)
def test_a_stage_switch_says_it_skips_the_stage(flag):
    stage = flag.path.split(".")[0]
    assert flag.option == f"--no-{stage}"
    assert flag_help(flag).startswith(f"Skip the {stage} stage")
    assert flag_help(flag).endswith(f"({stage}.enabled=false).")
    assert "Run the" not in flag_help(flag)
