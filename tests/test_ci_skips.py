"""tests/conftest.py: with CI=true a skipped browser or llm_server test fails; without CI it stays a skip."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = --strict-markers
markers =
    browser: needs a browser
    llm_server: needs a model server
"""
CONFTEST = "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
TESTS = """
import pytest


@pytest.fixture(scope="module")
def server():
    pytest.skip("no model file at /nowhere/model.gguf")


@pytest.mark.browser
@pytest.mark.skipif(True, reason="chromium is not installed")
def test_browser_skipif():
    pass


@pytest.mark.browser
def test_browser_skip_in_body():
    pytest.skip("chromedriver is missing")


@pytest.mark.llm_server
def test_model_skip_in_fixture(server):
    pass


def test_unmarked_skip():
    pytest.skip("optional extra not installed")


@pytest.mark.browser
@pytest.mark.xfail(reason="known browser bug")
def test_browser_xfail():
    raise AssertionError


@pytest.mark.browser
def test_browser_runs():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TESTS)
    return pytester


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_with_ci_a_skipped_browser_or_model_test_fails_with_its_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
):
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest("-rA")
    outcomes = result.parseoutcomes()
    failed_or_error = outcomes.get("failed", 0) + outcomes.get("errors", 0)
    assert failed_or_error == 3, outcomes
    assert outcomes.get("skipped") == 1 and outcomes.get("xfailed") == 1 and outcomes.get("passed") == 1
    result.stdout.fnmatch_lines_random(
        [
            "*skipped in CI (CI=true), where tests marked browser must run: *chromium is not installed*",
            "*skipped in CI (CI=true), where tests marked browser must run: *chromedriver is missing*",
            "*skipped in CI (CI=true), where tests marked llm_server must run: *no model file at*",
            "SKIPPED*optional extra not installed*",
        ]
    )
    assert result.ret != 0


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_without_ci_they_stay_skips(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = suite.runpytest("-rA")
    result.assert_outcomes(skipped=4, xfailed=1, passed=1)
    assert result.ret == 0


def test_the_project_registers_every_marker_it_uses_and_enforces_that(pytestconfig: pytest.Config):
    assert "--strict-markers" in pytestconfig.getini("addopts")
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert {"slow", "browser", "llm_server"} <= registered
