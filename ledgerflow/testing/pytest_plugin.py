"""The pytest plugin (entry point `ledgerflow.testing.pytest_plugin` in the `pytest11` group,
so installing Ledgerflow is enough): a `workflow_env` fixture, a fresh
`WorkflowTestEnvironment` per test over the runtime the `workflow_runtime` fixture returns.

    # conftest.py
    @pytest.fixture
    def workflow_runtime():
        from myapp.workflows import wfr
        return wfr
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledgerflow.runtime import WorkflowRuntime
from ledgerflow.testing.environment import WorkflowTestEnvironment


@pytest.fixture
def workflow_runtime() -> WorkflowRuntime:
    """Override it (in conftest.py or the test module) to return your app's WorkflowRuntime."""
    raise pytest.UsageError("workflow_env needs a `workflow_runtime` fixture that returns your app's "
                            "WorkflowRuntime; define one in conftest.py")


@pytest.fixture
def workflow_env(workflow_runtime: WorkflowRuntime) -> Iterator[WorkflowTestEnvironment]:
    """The app's workflows on the real engine, a throwaway database and a clock that skips ahead."""
    with WorkflowTestEnvironment(workflow_runtime) as env:
        yield env
