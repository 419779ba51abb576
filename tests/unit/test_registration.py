"""The SDK's registration surface (`ledgerflow.registration`): the `@wfr.workflow` and
`@wfr.activity` decorators, the `register_*` calls and `alternate_name`, over the engine's
Registry. What the Registry itself does is tested in tests/unit/engine/test_registration.py."""

from __future__ import annotations

import pytest

from ledgerflow.registration import Registrar, alternate_name
from orchestrator.engine import actions as act
from orchestrator.engine.registry import registered_name
from tests.unit.engine.factories import Run, output, task_completed


def test_workflow_decorator_registers_under_function_name() -> None:
    wfr = Registrar()

    @wfr.workflow
    def plain(ctx):
        return "ok"

    assert wfr.registry.workflow_names() == ["plain"]
    assert output(Run(wfr.registry).start("plain")) == "ok"


def test_workflow_decorator_with_name() -> None:
    wfr = Registrar()

    @wfr.workflow(name="custom")
    def plain(ctx):
        return "ok"

    assert wfr.registry.workflow_names() == ["custom"]
    assert output(Run(wfr.registry).start("custom")) == "ok"


def test_activity_decorator_bare_and_with_name() -> None:
    wfr = Registrar()

    @wfr.activity
    def first(ctx, x):
        return x

    @wfr.activity(name="second_name")
    def second(ctx, x):
        return x

    assert wfr.registry.activity_names() == ["first", "second_name"]
    assert wfr.registry.activity("second_name") is second


def test_register_workflow_and_activity_calls_with_name() -> None:
    wfr = Registrar()

    def wf(ctx):
        return 1

    def act_fn(ctx, x):
        return x

    wfr.register_workflow(wf, name="wf_named")
    wfr.register_activity(act_fn, name="act_named")
    wfr.register_workflow(lambda ctx: 2, name="lam")
    assert wfr.registry.workflow_names() == ["lam", "wf_named"]
    assert wfr.registry.activity_names() == ["act_named"]


def test_alternate_name_used_when_no_explicit_name() -> None:
    wfr = Registrar()

    @wfr.workflow
    @alternate_name(name="alt_wf")
    def wf(ctx):
        return "alt"

    @wfr.activity
    @alternate_name("alt_act")
    def some_activity(ctx, x):
        return x

    assert wfr.registry.workflow_names() == ["alt_wf"]
    assert wfr.registry.activity_names() == ["alt_act"]
    assert output(Run(wfr.registry).start("alt_wf")) == "alt"


def test_explicit_name_beats_alternate_name() -> None:
    wfr = Registrar()

    @wfr.workflow(name="explicit")
    @alternate_name(name="alternate")
    def wf(ctx):
        return 1

    assert wfr.registry.workflow_names() == ["explicit"]


def test_alternate_name_without_argument_is_function_name() -> None:
    @alternate_name()
    def some_fn(ctx):
        return 1

    assert registered_name(some_fn) == "some_fn"


def test_alternate_name_rejects_non_callable() -> None:
    with pytest.raises(ValueError, match="can only be applied to functions"):
        alternate_name("x")(42)  # type: ignore[arg-type]


def test_alternate_name_keeps_generator_workflows_working() -> None:
    wfr = Registrar()

    @wfr.activity(name="say")
    def say(ctx, x):
        return x

    @wfr.workflow
    @alternate_name("gen_alt")
    def wf(ctx, x):
        y = yield ctx.call_activity(say, input=x)
        return y

    result = Run(wfr.registry).start("gen_alt", "in")
    assert result.actions == [act.ScheduleTask(0, "say", '"in"', None, 1, 0)]


def test_call_activity_by_function_uses_registered_name() -> None:
    wfr = Registrar()

    @wfr.activity(name="renamed")
    def original(ctx, x):
        return x

    @wfr.activity
    @alternate_name("alt_activity")
    def other(ctx, x):
        return x

    @wfr.workflow
    def wf(ctx):
        yield ctx.call_activity(original, input=1)
        yield ctx.call_activity(other, input=2)

    result = Run(wfr.registry).start("wf")
    assert [a.name for a in result.actions] == ["renamed"]
    run = Run(wfr.registry)
    run.start("wf")

    assert [a.name for a in run.step([task_completed(0)]).actions] == ["alt_activity"]


@pytest.mark.parametrize(
    "register",
    [
        lambda r, f, g: (r.register_workflow(f, name="dup"), r.register_workflow(g, name="dup")),
        lambda r, f, g: (r.register_activity(f, name="dup"), r.register_activity(g, name="dup")),
        lambda r, f, g: (r.register_workflow(f), r.register_workflow(f)),
        lambda r, f, g: (r.register_workflow(f, name="dup"), r.register_versioned_workflow(g, name="dup")),
        lambda r, f, g: (r.register_versioned_workflow(f, name="dup"), r.register_workflow(g, name="dup")),
        lambda r, f, g: (
            r.register_versioned_workflow(f, name="dup", version_name="v1"),
            r.register_versioned_workflow(g, name="dup", version_name="v1"),
        ),
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
        register(Registrar(), f, g)
