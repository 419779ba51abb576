"""RemoteReplay against Dapr's own Durable Task executor (the code in the app's SDK that
answers an orchestrator work item), without a network: histories in, engine actions out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from dapr.ext.workflow._durabletask import worker as dt
from dapr.ext.workflow._durabletask.internal import orchestrator_actions_pb2 as actions_pb

from ledgerflow.grpc_api import protocol as p
from ledgerflow.sidecar.replay import RemoteReplay
from ledgerflow.sidecar.work_items import WorkItems
from orchestrator.engine import actions as act
from orchestrator.engine import events as ev

T0 = datetime(2026, 1, 1, 12, 0, 0)


class SdkStreams(WorkItems):
    """A connected "app": each work item is answered at once by the SDK's executor."""

    def __init__(self, *workflows: Any) -> None:
        super().__init__()
        self.registry = dt._Registry()
        for fn in workflows:
            self.registry.add_orchestrator(fn)
        self.requests: list[Any] = []

    def call(self, build: Any, timeout: float, what: str, key: tuple[Any, ...]) -> Any:
        request = build("token").workflowRequest
        self.requests.append(request)
        result = dt._OrchestrationExecutor(self.registry, logging.getLogger("sdk")).execute(
            request.instanceId, request.pastEvents, request.newEvents)
        version = None
        if result.version_name or result.patches:
            version = p.orchestration_pb.WorkflowVersion(name=result.version_name or "", patches=result.patches)
        return p.service_pb.WorkflowResponse(instanceId=request.instanceId, actions=result.actions,
                                             customStatus=p.text(result.encoded_custom_status), version=version)


def chain(ctx: Any, value: int) -> Any:
    first = yield ctx.call_activity("double", input=value)
    yield ctx.create_timer(timedelta(seconds=5))
    second = yield ctx.call_activity("double", input=first)
    return second


def waits(ctx: Any, _: Any) -> Any:
    approval = yield ctx.wait_for_external_event("approve")
    return approval


def parent(ctx: Any, _: Any) -> Any:
    return (yield ctx.call_sub_orchestrator("child", instance_id="kid"))


def patched(ctx: Any, _: Any) -> Any:
    if ctx.is_patched("p1"):
        yield ctx.wait_for_external_event("go")
    return 1


def unpatched(ctx: Any, _: Any) -> Any:
    yield ctx.wait_for_external_event("go")
    return 1


def started(name: str, input: str | None = None) -> list[ev.HistoryEvent]:
    return [ev.OrchestratorStarted(T0), ev.ExecutionStarted(T0, name, input)]


def test_a_chain_steps_as_the_engine_records_it() -> None:
    sdk = SdkStreams(chain)
    replay = RemoteReplay(sdk, "i1", timeout=5)
    assert replay.replay([]) is None
    first = replay.step(started("chain", "3"))
    assert first.status == "RUNNING"
    assert first.actions == [act.ScheduleTask(1, "double", "3", first_task_id=1)]
    assert first.new_events[2:] == [ev.TaskScheduled(T0, 1, "double", "3")]
    assert replay.events_applied == 3
    assert replay.expected_completion(1) == ("activity", None) and replay.open_activity(1) == "double"

    t1 = T0 + timedelta(seconds=1)
    second = replay.step([ev.OrchestratorStarted(t1), ev.TaskCompleted(t1, 1, "6")])
    assert second.actions == [act.CreateTimer(2, t1 + timedelta(seconds=5))]
    assert replay.expected_completion(1) is None and replay.expected_completion(2) == ("timer", None)

    t2 = t1 + timedelta(seconds=5)
    replay.step([ev.OrchestratorStarted(t2), ev.TimerFired(t2, 2, t2)])
    t3 = t2 + timedelta(seconds=1)
    done = replay.step([ev.OrchestratorStarted(t3), ev.TaskCompleted(t3, 3, "12")])
    assert done.status == "COMPLETED" and done.completion is not None and done.completion.result == "12"
    assert done.new_events[-1] == ev.ExecutionCompleted(t3, "COMPLETED", "12")
    # every step sent the whole history so far: the SDK holds nothing between work items
    assert [len(r.pastEvents) for r in sdk.requests] == [0, 3, 6, 9]


def test_a_cold_replay_of_recorded_history_matches_the_warm_one() -> None:
    sdk = SdkStreams(chain)
    warm = RemoteReplay(sdk, "i1", timeout=5)
    warm.replay([])
    history = list(warm.step(started("chain", "3")).new_events)
    t1 = T0 + timedelta(seconds=1)
    history += warm.step([ev.OrchestratorStarted(t1), ev.TaskCompleted(t1, 1, "6")]).new_events
    cold = RemoteReplay(sdk, "i1", timeout=5)
    assert cold.replay(history) is None and cold.events_applied == len(history)
    t2 = t1 + timedelta(seconds=5)
    assert cold.step([ev.OrchestratorStarted(t2), ev.TimerFired(t2, 2, t2)]).actions == [
        act.ScheduleTask(3, "double", "6", first_task_id=3)]


def test_an_indefinite_wait_keeps_the_sdks_optional_timer_through_storage() -> None:
    """The SDK backs wait_for_external_event with a timer at 9999-12-31T23:59:59.999999999Z;
    stored to the microsecond, it must come back as exactly that timer, or the replay fails."""
    sdk = SdkStreams(waits)
    replay = RemoteReplay(sdk, "i2", timeout=5)
    replay.replay([])
    first = replay.step(started("waits"))
    (timer,) = first.actions
    assert isinstance(timer, act.CreateTimer) and timer.fire_at.year == 9999
    cold = RemoteReplay(sdk, "i2", timeout=5)
    cold.replay(first.new_events)
    t1 = T0 + timedelta(seconds=1)
    done = cold.step([ev.OrchestratorStarted(t1), ev.EventRaised(t1, "approve", '"yes"')])
    assert (done.status, done.completion.result if done.completion else None) == ("COMPLETED", '"yes"')


def test_a_recursive_terminate_ends_the_open_children() -> None:
    sdk = SdkStreams(parent)
    replay = RemoteReplay(sdk, "mom", timeout=5)
    replay.replay([])
    first = replay.step(started("parent"))
    assert first.actions == [act.CreateSubOrchestration(1, "child", "kid", None)]
    assert replay.expected_completion(1) == ("child", None)
    t1 = T0 + timedelta(seconds=1)
    ended = replay.step([ev.OrchestratorStarted(t1), ev.ExecutionTerminated(t1, '"stop"', True)])
    assert ended.status == "TERMINATED"
    assert ended.actions[0] == act.TerminateSubOrchestration("kid", None, '"stop"')


def test_code_that_drops_a_recorded_patch_stalls() -> None:
    recorded = RemoteReplay(SdkStreams(patched), "i3", timeout=5)
    recorded.replay([])
    history = recorded.step(started("patched")).new_events
    assert history[0] == ev.OrchestratorStarted(T0, None, ("p1",))
    changed = SdkStreams()
    changed.registry.add_named_orchestrator("patched", unpatched)
    replay = RemoteReplay(changed, "i3", timeout=5)
    replay.replay(history)
    t1 = T0 + timedelta(seconds=1)
    result = replay.step([ev.OrchestratorStarted(t1), ev.EventRaised(t1, "go", None)])
    assert result.status == "STALLED" and result.stall is not None and result.stall.reason == "PATCH_MISMATCH"
    assert result.new_events == [] and result.actions == []


def test_a_failing_workflow_fails_with_the_sdks_failure_details() -> None:
    def broken(ctx: Any, _: Any) -> Any:
        raise KeyError("nope")

    replay = RemoteReplay(SdkStreams(broken), "i4", timeout=5)
    replay.replay([])
    result = replay.step(started("broken"))
    assert result.status == "FAILED" and result.completion is not None and result.completion.failure is not None
    assert result.completion.failure.error_type == "KeyError"
    assert isinstance(result.new_events[-1], ev.ExecutionCompleted)


def test_a_step_needs_a_connected_app() -> None:
    from ledgerflow.sidecar.work_items import NoAppConnected

    replay = RemoteReplay(WorkItems(), "i5", timeout=5)
    replay.replay([])
    with pytest.raises(NoAppConnected, match="i5"):
        replay.step(started("anything"))


def test_an_action_the_sidecar_does_not_carry_out_fails_the_run_saying_so() -> None:
    class SendsEvents(SdkStreams):
        def call(self, build: Any, timeout: float, what: str, key: tuple[Any, ...]) -> Any:
            send = actions_pb.WorkflowAction(id=1, sendEvent=actions_pb.SendEventAction(name="ping"))
            return p.service_pb.WorkflowResponse(instanceId="i6", actions=[send])

    replay = RemoteReplay(SendsEvents(), "i6", timeout=5)
    replay.replay([])
    result = replay.step(started("anything"))
    assert result.status == "FAILED" and result.actions == [result.completion]
    assert result.completion is not None and result.completion.failure is not None
    assert result.completion.failure.error_type == "UnsupportedWorkflowAction"
    assert "'sendEvent'" in result.completion.failure.message
