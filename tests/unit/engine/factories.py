"""Small builders for history events, as durabletask's tests have (`new_task_completed_event`).

Every factory takes Python values for user data and writes them as the engine's JSON text,
so a test reads like the history it describes. `T0` is the default clock; `at(seconds)` is a
time that many seconds after it. Decorators add a test's workflows and activities to the
engine's own `Registry` (`@workflow(registry)`); helpers at the bottom run a workflow step
by step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.serialization import to_json

T0 = datetime(2024, 1, 1, 12, 0, 0)
INSTANCE = "wf-1"

F = TypeVar("F", bound=Callable[..., Any])


# -- registering workflow code -----------------------------------------------------------


def workflow(registry: Registry, name: str | None = None) -> Callable[[F], F]:
    """`@workflow(registry)`: `registry.add_workflow` as a decorator; the function is kept."""

    def add(fn: F) -> F:
        registry.add_workflow(fn, name)
        return fn

    return add


def versioned_workflow(
    registry: Registry, *, name: str, version_name: str | None = None, is_latest: bool = False
) -> Callable[[F], F]:
    """`@versioned_workflow(registry, name=..., version_name=...)`: `add_versioned_workflow`."""

    def add(fn: F) -> F:
        registry.add_versioned_workflow(fn, name, version_name, is_latest)
        return fn

    return add


def activity(registry: Registry, name: str | None = None) -> Callable[[F], F]:
    """`@activity(registry)`: `registry.add_activity` as a decorator; the function is kept."""

    def add(fn: F) -> F:
        registry.add_activity(fn, name)
        return fn

    return add


# -- history events ----------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def failure(message: str = "boom", error_type: str = "ValueError", stack_trace: str | None = None) -> ev.FailureDetails:
    return ev.FailureDetails(message, error_type, stack_trace)


def started(
    name: str, input: Any = None, *, t: datetime = T0, parent: ev.ParentInfo | None = None
) -> ev.ExecutionStarted:
    return ev.ExecutionStarted(t, name, to_json(input), parent)


def orchestrator_started(
    t: datetime = T0, *, version: str | None = None, patches: Sequence[str] = ()
) -> ev.OrchestratorStarted:
    return ev.OrchestratorStarted(t, version, tuple(patches))


def task_scheduled(id: int, name: str, input: Any = None, *, t: datetime = T0, attempt: int = 1) -> ev.TaskScheduled:
    return ev.TaskScheduled(t, id, name, to_json(input), None, attempt)


def task_completed(id: int, result: Any = None, *, t: datetime = T0) -> ev.TaskCompleted:
    return ev.TaskCompleted(t, id, to_json(result))


def task_failed(id: int, message: str = "boom", error_type: str = "ValueError", *, t: datetime = T0) -> ev.TaskFailed:
    return ev.TaskFailed(t, id, failure(message, error_type, "Traceback: ..."))


def timer_created(id: int, fire_at: datetime, *, t: datetime = T0) -> ev.TimerCreated:
    return ev.TimerCreated(t, id, fire_at)


def timer_fired(id: int, fire_at: datetime, *, t: datetime | None = None) -> ev.TimerFired:
    return ev.TimerFired(t or fire_at, id, fire_at)


def child_created(
    id: int, name: str, instance_id: str, input: Any = None, *, t: datetime = T0
) -> ev.SubOrchestrationInstanceCreated:
    return ev.SubOrchestrationInstanceCreated(t, id, name, instance_id, to_json(input))


def child_completed(id: int, result: Any = None, *, t: datetime = T0) -> ev.SubOrchestrationInstanceCompleted:
    return ev.SubOrchestrationInstanceCompleted(t, id, to_json(result))


def child_failed(
    id: int, message: str = "boom", error_type: str = "ValueError", *, t: datetime = T0
) -> ev.SubOrchestrationInstanceFailed:
    return ev.SubOrchestrationInstanceFailed(t, id, failure(message, error_type, "Traceback: ..."))


def event_raised(name: str, data: Any = None, *, t: datetime = T0) -> ev.EventRaised:
    return ev.EventRaised(t, name, to_json(data))


def suspended(reason: str | None = None, *, t: datetime = T0) -> ev.ExecutionSuspended:
    return ev.ExecutionSuspended(t, reason)


def resumed(reason: str | None = None, *, t: datetime = T0) -> ev.ExecutionResumed:
    return ev.ExecutionResumed(t, reason)


def terminated(output: Any = None, *, recursive: bool = True, t: datetime = T0) -> ev.ExecutionTerminated:
    return ev.ExecutionTerminated(t, to_json(output), recursive)


# -- driving the engine ------------------------------------------------------------------


class Run:
    """A history built step by step: `run.step(events)` executes with everything so far as
    old events and `[OrchestratorStarted(t)] + events` as new ones, then appends what the
    engine returned. `run.history` is what a store would hold."""

    def __init__(self, registry: Registry, instance_id: str = INSTANCE) -> None:
        self.registry = registry
        self.instance_id = instance_id
        self.history: list[ev.HistoryEvent] = []
        self.results: list[executor.ExecutionResult] = []

    def start(self, name: str, input: Any = None, *, t: datetime = T0) -> executor.ExecutionResult:
        return self.step([started(name, input, t=t)], t=t)

    def step(self, events: Iterable[ev.HistoryEvent], *, t: datetime = T0) -> executor.ExecutionResult:
        new = [orchestrator_started(t), *events]
        result = executor.execute(self.registry, self.instance_id, list(self.history), new)
        self.history.extend(result.new_events)
        self.results.append(result)
        return result

    @property
    def last(self) -> executor.ExecutionResult:
        return self.results[-1]


def output(result: executor.ExecutionResult) -> Any:
    """The decoded output of a completed step."""
    from orchestrator.engine.serialization import from_json

    assert result.completion is not None, f"not complete: {result.status}"
    return from_json(result.completion.result)
