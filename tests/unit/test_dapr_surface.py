"""Ledgerflow against the installed `dapr-ext-workflow`'s public surface, point by point: every
exported name, every constructor argument (by name and position) and every public method of
the runtime, the clients (sync and aio), the contexts and WorkflowState. What is left out on
purpose is listed in NOT_OFFERED, with the README's reason; anything else missing fails."""

from __future__ import annotations

import inspect
from pathlib import Path
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import dapr.ext.workflow as dapr_wf
    import dapr.ext.workflow.aio as dapr_aio

import ledgerflow as lf
import ledgerflow.aio as lf_aio

#: README, "Dapr clients": the MCP tool client is not a workflow feature Ledgerflow has.
NOT_OFFERED = {"DaprMCPClient", "MCPToolDef"}

PAIRS = [
    (dapr_wf.WorkflowRuntime, lf.WorkflowRuntime),
    (dapr_wf.DaprWorkflowClient, lf.DaprWorkflowClient),
    (dapr_aio.DaprWorkflowClient, lf_aio.DaprWorkflowClient),
    (dapr_wf.DaprWorkflowContext, lf.DaprWorkflowContext),
    (dapr_wf.WorkflowActivityContext, lf.WorkflowActivityContext),
]


def test_every_exported_name() -> None:
    for module, ours in ((dapr_wf, lf), (dapr_aio, lf_aio)):
        missing = set(getattr(module, "__all__", ())) - NOT_OFFERED - set(dir(ours))
        assert not missing, f"{module.__name__} exports {sorted(missing)}, which Ledgerflow lacks"


@pytest.mark.parametrize(("theirs", "ours"), PAIRS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_constructor_arguments_and_methods(theirs: type, ours: type) -> None:
    if theirs not in (dapr_wf.DaprWorkflowContext, dapr_wf.WorkflowActivityContext):  # built by the runtime
        want = [p for p in inspect.signature(theirs.__init__).parameters.values() if p.name != "self"]
        have = inspect.signature(ours.__init__).parameters
        for position, param in enumerate(want, start=1):
            assert param.name in have, f"{ours.__name__}() lacks argument {param.name!r}"
            if param.kind is param.POSITIONAL_OR_KEYWORD:
                assert list(have).index(param.name) == position, f"{param.name!r} is not argument {position}"
    methods = {n for n, _ in inspect.getmembers(theirs) if not n.startswith("_")}
    missing = methods - {n for n in dir(ours) if not n.startswith("_")}
    assert not missing, f"{ours.__name__} lacks {sorted(missing)}"


def test_workflow_state_fields() -> None:
    fields = {"instance_id", "name", "runtime_status", "created_at", "last_updated_at", "serialized_input",
              "serialized_output", "serialized_custom_status", "failure_details"}
    assert fields <= set(lf.WorkflowState.__dataclass_fields__)
    assert {s.name for s in dapr_wf.WorkflowStatus} <= {s.name for s in lf.WorkflowStatus}
    assert {"to_json"} <= {n for n in dir(lf.WorkflowState)}


def test_runtime_worker_ready_and_activity_inner_context() -> None:
    runtime = lf.WorkflowRuntime(worker_ready_timeout=5)
    assert (runtime.worker_ready_timeout, runtime.wait_for_worker_ready(timeout=0)) == (5, False)
    ctx = lf.WorkflowActivityContext("wf-1", 3, "wf-1:run:0:3")
    assert ctx.get_inner_context() is ctx


def test_parameters_without_effect_say_so() -> None:
    with pytest.warns(UserWarning, match="interceptors"):
        lf.WorkflowRuntime(interceptors=[object()])


@pytest.mark.parametrize(("argument", "configured", "applied"), [(None, None, None), (3, None, 3), (3, 2, 2), (None, 4, 4)])
def test_orchestration_work_items_cap_the_batches_a_process_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argument: int | None, configured: int | None, applied: int | None,
) -> None:
    from ledgerflow import runtime as runtime_mod

    seen: list[int | None] = []
    monkeypatch.setattr(runtime_mod, "register_orchestrator_tasks",
                        lambda *args, process_limit=None, **kwargs: seen.append(process_limit))
    if configured is not None:
        monkeypatch.setenv("LEDGERFLOW_MAX_CONCURRENT_WORKFLOW_INVOCATIONS", str(configured))
    runtime = lf.WorkflowRuntime(maximum_concurrent_orchestration_work_items=argument,
                                 database_url=f"sqlite:///{tmp_path / 'wf.db'}", broker_url="memory://")
    runtime.build()
    assert seen == [applied]
