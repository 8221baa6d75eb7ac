"""One list of step names: the graph, the trace, the UI labels, the CLI switches and the settings agree."""

from __future__ import annotations

import json

from agents.cli import STAGE_SWITCHES
from agents.graph import build_graph
from agents.settings import Settings
from agents.steps import SWITCHABLE_STEPS, TRACED_STEPS, Step
from ui.view import STAGES


def test_the_graph_has_one_node_per_step():
    nodes = set(build_graph(None).get_graph().nodes) - {"__start__", "__end__"}
    assert nodes == {str(step) for step in Step}


def test_every_traced_step_has_a_ui_label_in_order():
    assert list(STAGES) == list(TRACED_STEPS)


def test_each_switchable_step_is_a_settings_switch_and_a_cli_flag():
    settings = Settings()
    assert all(getattr(settings, step).enabled is True for step in SWITCHABLE_STEPS)
    assert [flag.path for flag in STAGE_SWITCHES] == [f"{step}.enabled" for step in SWITCHABLE_STEPS]


def test_step_names_serialise_as_plain_strings():
    assert json.dumps({Step.EXPAND: [Step.VERIFY]}) == '{"expand": ["verify"]}'
    assert [type(str(step)) for step in Step] == [str] * len(Step)
