"""Input passing: `fn(ctx)` or `fn(ctx, input)`, and pydantic models validated from input."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import pydantic
import pytest

from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.signatures import call_with_input
from tests.unit.engine.factories import Run, output, task_completed, workflow


class Order(pydantic.BaseModel):
    id: int
    item: str = "widget"


def test_workflow_without_second_parameter_is_called_with_ctx_only() -> None:
    reg = Registry()
    seen = []

    @workflow(reg)
    def wf(ctx):
        seen.append(ctx.instance_id)
        return "no input"

    assert output(Run(reg).start("wf", {"ignored": True})) == "no input"
    assert seen == ["wf-1"]


@pytest.mark.parametrize("value", [None, 0, "text", [1, 2], {"a": 1}, True, 1.5])
def test_workflow_with_second_parameter_gets_decoded_input(value) -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, data):
        return {"got": data}

    assert output(Run(reg).start("wf", value)) == {"got": value}


def test_lambda_and_keyword_named_parameters() -> None:
    reg = Registry()
    reg.add_workflow(lambda ctx, x: x * 2, name="double")
    reg.add_workflow(lambda ctx: "none", name="noarg")
    assert output(Run(reg).start("double", 21)) == 42
    assert output(Run(reg).start("noarg", 21)) == "none"


def test_pydantic_annotated_input_is_validated_into_the_model() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Order):
        assert isinstance(order, Order)
        return [order.id, order.item]

    assert output(Run(reg).start("wf", {"id": 7})) == [7, "widget"]


def test_optional_pydantic_annotation_is_unwrapped() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Optional[Order]):  # noqa: UP045 - the typing form is what users write
        return None if order is None else type(order).__name__

    @workflow(reg)
    def wf2(ctx, order: Order | None = None):
        return None if order is None else type(order).__name__

    assert output(Run(reg).start("wf", {"id": 1})) == "Order"
    assert output(Run(reg).start("wf2", {"id": 1})) == "Order"
    assert Run(reg, "wf-3").start("wf", None).completion.result is None


def test_pydantic_input_sent_as_model_round_trips_into_model() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Order):
        return order.model_dump()

    assert output(Run(reg).start("wf", Order(id=3, item="bolt"))) == {"id": 3, "item": "bolt"}


def test_pydantic_input_from_autoobject_namespace() -> None:
    """A dataclass input arrives as SimpleNamespace; a model parameter still validates it."""
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Order):
        return order.item

    assert output(Run(reg).start("wf", SimpleNamespace(id=1, item="nut"))) == "nut"


def test_invalid_pydantic_input_fails_the_workflow() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Order):
        return order.id

    result = Run(reg).start("wf", {"id": "not a number"})
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "ValidationError"


def test_unannotated_and_non_model_annotations_pass_value_through() -> None:
    def untyped(ctx, x):
        return x

    def typed(ctx, x: dict):
        return x

    assert call_with_input(untyped, None, {"id": 1}) == {"id": 1}
    assert call_with_input(typed, None, {"id": 1}) == {"id": 1}


def test_activity_result_feeds_generator_as_decoded_value() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, order: Order):
        got = yield ctx.call_activity("price", input=order)
        return got["total"] * order.id

    run = Run(reg)
    first = run.start("wf", {"id": 2})
    assert first.actions[0].input == '{"id": 2, "item": "widget"}'
    assert output(run.step([task_completed(0, {"total": 5})])) == 10


def test_activity_functions_follow_the_same_rules() -> None:
    def no_input(ctx):
        return "ctx only"

    def typed(ctx, order: Order):
        return order

    assert call_with_input(no_input, "actx", {"id": 1}) == "ctx only"
    assert call_with_input(typed, "actx", {"id": 1}) == Order(id=1)
    assert call_with_input(typed, "actx", None) is None
