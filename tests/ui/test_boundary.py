"""The agent and retrieval packages load without the UI's libraries: Streamlit and pandas stay in ``ui/``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI_ONLY = ("streamlit", "pandas")

IMPORT_PACKAGES = "import agents, retrieval"
IMPORT_EVERY_MODULE = """
import importlib, pkgutil
import agents, retrieval
for package in (agents, retrieval):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
"""


def loaded_ui_libraries(code: str) -> list[str]:
    """The UI-only libraries in ``sys.modules`` after running ``code`` in a fresh interpreter at the root."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {UI_ONLY!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [IMPORT_PACKAGES, IMPORT_EVERY_MODULE], ids=["packages", "every-module"])
def test_agents_and_retrieval_load_without_streamlit_or_pandas(code: str) -> None:
    assert loaded_ui_libraries(code) == []


def test_the_probe_sees_a_ui_library_when_one_is_loaded() -> None:
    assert loaded_ui_libraries("import ui.panels") == ["streamlit", "pandas"]
