"""JSON text as Dapr writes it; auto-objects; pydantic models; clear errors for the rest."""

from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

import pydantic
import pytest

from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.serialization import AUTO_SERIALIZED, SerializationError, from_json, to_json
from tests.unit.engine.factories import Run, output, task_completed, workflow

Point = namedtuple("Point", ["x", "y"])


@dataclass
class Item:
    sku: str
    qty: int


@dataclass
class Outer:
    inner: Item


class Model(pydantic.BaseModel):
    when: datetime
    tags: list[str] = []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": [1, 2]}, '{"b": 1, "a": [1, 2]}'),
        ("café ✓", '"caf\\u00e9 \\u2713"'),
        ([True, None, 1.5], "[true, null, 1.5]"),
        ((1, 2), "[1, 2]"),
        (0, "0"),
        ("", '""'),
    ],
    ids=["separators-and-key-order", "ascii-escaped", "literals", "tuple-as-list", "zero", "empty-string"],
)
def test_json_text_matches_json_dumps_defaults(value, text) -> None:
    assert to_json(value) == text == json.dumps(value)


def test_none_stays_none_and_empty_text_reads_as_none() -> None:
    assert to_json(None) is None
    assert from_json(None) is None and from_json("") is None


def test_dataclass_is_written_with_the_autoobject_marker_and_read_as_namespace() -> None:
    text = to_json(Item("A-1", 2))
    assert text == '{"sku": "A-1", "qty": 2, "__durabletask_autoobject__": true}'
    assert from_json(text) == SimpleNamespace(sku="A-1", qty=2)


def test_namedtuple_and_simplenamespace_use_the_marker() -> None:
    assert to_json(Point(1, 2)) == '{"x": 1, "y": 2, "__durabletask_autoobject__": true}'
    assert to_json(SimpleNamespace(a=1)) == '{"a": 1, "__durabletask_autoobject__": true}'
    assert from_json(to_json(Point(1, 2))) == SimpleNamespace(x=1, y=2)


def test_nested_auto_objects_decode_as_durabletask_does() -> None:
    """Dataclasses and namespaces anywhere get the marker; a namedtuple only at the top
    level (json writes nested tuples itself, as a list), and a dataclass inside a dataclass
    is a plain dict (dataclasses.asdict recurses) - byte-for-byte durabletask's encoder."""
    value = {"items": [Item("A", 1)], "where": SimpleNamespace(p=Point(0, 1)), "outer": Outer(Item("B", 2))}
    assert to_json(value) == (
        '{"items": [{"sku": "A", "qty": 1, "__durabletask_autoobject__": true}], '
        '"where": {"p": [0, 1], "__durabletask_autoobject__": true}, '
        '"outer": {"inner": {"sku": "B", "qty": 2}, "__durabletask_autoobject__": true}}'
    )
    assert from_json(to_json(value)) == {
        "items": [SimpleNamespace(sku="A", qty=1)],
        "where": SimpleNamespace(p=[0, 1]),
        "outer": SimpleNamespace(inner={"sku": "B", "qty": 2}),
    }


def test_encoding_a_namespace_does_not_mutate_it() -> None:
    ns = SimpleNamespace(a=1)
    to_json(ns)
    assert vars(ns) == {"a": 1}


def test_marker_false_or_absent_keeps_a_dict() -> None:
    assert from_json('{"a": 1}') == {"a": 1}
    assert from_json(json.dumps({"a": 1, AUTO_SERIALIZED: False})) == {"a": 1}


def test_pydantic_model_is_dumped_in_json_mode() -> None:
    text = to_json(Model(when=datetime(2024, 1, 2, 3, 4, 5), tags=["x"]))
    assert text == '{"when": "2024-01-02T03:04:05", "tags": ["x"]}'


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", datetime(2024, 1, 1)])
def test_unserializable_value_error_names_type_and_call(value) -> None:
    with pytest.raises(SerializationError) as info:
        to_json(value, what="Input of call_activity('x')")
    assert isinstance(info.value, TypeError)
    assert str(info.value).startswith(
        f"Input of call_activity('x') is not JSON-serializable: {type(value).__name__} value"
    )


def test_workflow_passing_a_set_to_call_activity_fails_with_serialization_error() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("store", input={"a", "b"})

    result = Run(reg).start("wf")
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "SerializationError"
    assert result.completion.failure.message.startswith(
        "Input of call_activity('store') is not JSON-serializable: set value"
    )
    assert result.actions == [result.completion]


def test_workflow_can_catch_the_serialization_error_as_type_error() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        try:
            ctx.call_child_workflow("child", input=object())
        except TypeError as err:
            return type(err).__name__
        return "no error"

    assert output(Run(reg).start("wf")) == "SerializationError"


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        (lambda ctx: {1, 2}, "Output of workflow 'wf' is not JSON-serializable: set value"),
        (lambda ctx: ctx.set_custom_status(object()), "set_custom_status value is not JSON-serializable: object value"),
        (lambda ctx: ctx.continue_as_new(b"x"), "Input of continue_as_new is not JSON-serializable: bytes value"),
    ],
    ids=["output", "custom-status", "continue-as-new"],
)
def test_other_unserializable_values_fail_the_workflow_naming_the_call(body, prefix) -> None:
    reg = Registry()
    reg.add_workflow(body, name="wf")
    failure = Run(reg).start("wf").completion.failure
    assert failure.error_type == "SerializationError"
    assert failure.message.startswith(prefix)


def test_dataclass_input_and_result_cross_the_activity_boundary() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        got = yield ctx.call_activity("reserve", input=Item("A", 3))
        return {"ok": got.ok, "qty": got.qty}

    run = Run(reg)
    assert run.start("wf").actions[0].input == '{"sku": "A", "qty": 3, "__durabletask_autoobject__": true}'
    assert output(run.step([task_completed(0, SimpleNamespace(ok=True, qty=3))])) == {"ok": True, "qty": 3}
