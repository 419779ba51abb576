"""The engine's Registry: names, alternate names, duplicates, late registration, unknown names.

The SDK's decorators and `alternate_name` over it are tested in tests/unit/test_registration.py.
"""

from __future__ import annotations

import pytest

from orchestrator.engine import actions as act
from orchestrator.engine import executor
from orchestrator.engine.registry import ALTERNATE_NAME_ATTR, Registry, registered_name
from tests.unit.engine.factories import (
    INSTANCE,
    Run,
    activity,
    orchestrator_started,
    output,
    started,
    task_completed,
    workflow,
)


def _alternate(name: str):
    """What `alternate_name(name)` leaves on a function: the attribute the engine reads."""

    def mark(fn):
        setattr(fn, ALTERNATE_NAME_ATTR, name)
        return fn

    return mark


def test_a_workflow_is_registered_under_its_function_name_or_the_name_given() -> None:
    reg = Registry()

    def plain(ctx):
        return "ok"

    def other(ctx):
        return "other"

    assert reg.add_workflow(plain) == "plain"
    assert reg.add_workflow(other, "custom") == "custom"
    assert reg.workflow_names() == ["custom", "plain"]
    assert output(Run(reg).start("plain")) == "ok"
    assert output(Run(reg).start("custom")) == "other"


def test_an_activity_is_registered_under_its_function_name_or_the_name_given() -> None:
    reg = Registry()

    @activity(reg)
    def first(ctx, x):
        return x

    @activity(reg, name="second_name")
    def second(ctx, x):
        return x

    assert reg.activity_names() == ["first", "second_name"]
    assert reg.activity("second_name") is second


def test_alternate_name_used_when_no_explicit_name() -> None:
    reg = Registry()

    @workflow(reg)
    @_alternate("alt_wf")
    def wf(ctx):
        return "alt"

    @activity(reg)
    @_alternate("alt_act")
    def some_activity(ctx, x):
        return x

    assert reg.workflow_names() == ["alt_wf"]
    assert reg.activity_names() == ["alt_act"]
    assert output(Run(reg).start("alt_wf")) == "alt"


def test_explicit_name_beats_alternate_name() -> None:
    reg = Registry()

    @workflow(reg, name="explicit")
    @_alternate("alternate")
    def wf(ctx):
        return 1

    assert reg.workflow_names() == ["explicit"]
    assert registered_name(wf) == "explicit"


def test_registered_name_of_a_string_or_an_unregistered_function() -> None:
    def some_fn(ctx):
        return 1

    assert (registered_name("by_name"), registered_name(some_fn)) == ("by_name", "some_fn")
    assert registered_name(_alternate("alt")(some_fn)) == "alt"


def test_call_activity_by_function_uses_registered_name() -> None:
    reg = Registry()

    @activity(reg, name="renamed")
    def original(ctx, x):
        return x

    @activity(reg)
    @_alternate("alt_activity")
    def other(ctx, x):
        return x

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity(original, input=1)
        yield ctx.call_activity(other, input=2)

    result = Run(reg).start("wf")
    assert result.actions == [act.ScheduleTask(0, "renamed", "1", None, 1, 0)]
    run = Run(reg)
    run.start("wf")

    assert [a.name for a in run.step([task_completed(0)]).actions] == ["alt_activity"]


@pytest.mark.parametrize(
    "register",
    [
        lambda r, f, g: (r.add_workflow(f, "dup"), r.add_workflow(g, "dup")),
        lambda r, f, g: (r.add_activity(f, "dup"), r.add_activity(g, "dup")),
        lambda r, f, g: (r.add_workflow(f), r.add_workflow(f)),
        lambda r, f, g: (r.add_workflow(f, "dup"), r.add_versioned_workflow(g, "dup")),
        lambda r, f, g: (r.add_versioned_workflow(f, "dup"), r.add_workflow(g, "dup")),
        lambda r, f, g: (r.add_versioned_workflow(f, "dup", "v1"), r.add_versioned_workflow(g, "dup", "v1")),
    ],
    ids=[
        "workflow",
        "activity",
        "same-fn-twice",
        "plain-then-versioned",
        "versioned-then-plain",
        "same-version",
    ],
)
def test_duplicate_names_raise_value_error(register) -> None:
    def f(ctx):
        return 1

    def g(ctx):
        return 2

    with pytest.raises(ValueError):
        register(Registry(), f, g)


def test_same_name_for_a_workflow_and_an_activity_is_allowed() -> None:
    reg = Registry()
    reg.add_workflow(lambda ctx: 1, "shared")
    reg.add_activity(lambda ctx, x: x, "shared")
    assert reg.workflow_names() == ["shared"] and reg.activity_names() == ["shared"]


def test_registering_after_start_is_allowed() -> None:
    reg = Registry()

    @workflow(reg)
    def first(ctx):
        yield ctx.call_activity("later", input=1)
        return "done"

    run = Run(reg)
    assert run.start("first").status == executor.RUNNING

    @activity(reg)
    def later(ctx, x):
        return x

    @workflow(reg)
    def second(ctx):
        return "second"

    assert reg.activity("later") is later
    assert output(Run(reg, "wf-2").start("second")) == "second"


def test_unknown_workflow_name_fails_the_run() -> None:
    result = executor.execute(Registry(), INSTANCE, [], [orchestrator_started(), started("missing")])
    assert result.status == executor.FAILED
    assert result.completion is not None and result.completion.failure is not None
    assert result.completion.failure.message == "A 'missing' orchestrator was not registered."
    assert result.completion.failure.error_type == "OrchestratorNotRegisteredError"
    assert result.actions == [result.completion]


def test_unknown_activity_lookup_names_it() -> None:
    with pytest.raises(Exception, match="Activity function named 'nope' was not registered!"):
        Registry().activity("nope")
