"""The `workflow_env` fixture, used from a test module outside the package (pytester), and
the entry point that makes pytest load it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = "ledgerflow.testing.pytest_plugin"

USER_TESTS = '''
from datetime import timedelta

import pytest
import ledgerflow as wf

wfr = wf.WorkflowRuntime(app_id="pluginuser")


@wfr.activity
def send_reminder(ctx, who):
    raise RuntimeError("the real reminder must not run in tests")


@wfr.workflow
def trial(ctx, who):
    yield ctx.create_timer(timedelta(days=14))
    return (yield ctx.call_activity(send_reminder, input=who))


@pytest.fixture
def workflow_runtime():
    return wfr


def test_a_two_week_trial_ends_with_a_reminder(workflow_env):
    workflow_env.mock_activity(send_reminder, lambda ctx, who: f"reminded {who}")
    iid = workflow_env.client.schedule_new_workflow(trial, input="ann")
    state = workflow_env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state.serialized_output == '"reminded ann"'
'''


def test_the_fixture_works_from_a_test_module_outside_the_package(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", PLUGIN)
    result.assert_outcomes(passed=1)


def test_without_a_workflow_runtime_fixture_the_error_says_what_to_define(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_it(workflow_env):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs a `workflow_runtime` fixture*"])


def test_the_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {PLUGIN: PLUGIN}
