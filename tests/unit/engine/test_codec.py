"""The codec: every history event to (type name, JSON payload) and back, and its errors."""

from __future__ import annotations

import json

import pytest

from orchestrator.engine import events as ev
from orchestrator.engine.codec import CodecError, decode, encode
from tests.unit.engine import factories as f

ALL_EVENTS = [
    f.started("wf", {"a": 1}, parent=ev.ParentInfo("p", "p-1", 3, "app")),
    ev.ExecutionStarted(f.T0, "wf", None, None, f.at(60)),
    f.orchestrator_started(f.T0, version="v2", patches=["p1", "p2"]),
    f.task_scheduled(0, "act", [1, 2], attempt=3),
    ev.TaskScheduled(f.T0, 1, "remote", None, "other-app"),
    f.task_completed(0, "ok"),
    f.task_failed(0, "boom", "ValueError"),
    ev.TaskFailed(f.T0, 2, ev.FailureDetails("m", "E", None)),
    f.timer_created(1, f.at(5)),
    f.timer_fired(1, f.at(5)),
    f.child_created(2, "child", "wf-1:0002", {"x": 1}),
    f.child_completed(2, None),
    f.child_failed(2, "child failed", "RuntimeError"),
    f.event_raised("Approval", {"by": "ann"}),
    f.suspended("why"),
    f.resumed(),
    f.terminated("bye", recursive=False),
    ev.ExecutionCompleted(f.T0, "FAILED", None, ev.FailureDetails("m", "E", "trace")),
    ev.ExecutionCompleted(f.T0, "COMPLETED", '"r"'),
    ev.ContinuedAsNew(f.T0, "1", (f.event_raised("a", 1), f.event_raised("b", None, t=f.at(1)))),
]


def test_every_event_type_is_covered_here() -> None:
    assert {type(e) for e in ALL_EVENTS} == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip(event: ev.HistoryEvent) -> None:
    type_name, payload = encode(event)
    assert type_name == type(event).__name__
    json.loads(payload)
    assert decode(type_name, payload) == event


def test_payload_shape_is_plain_json_with_iso_datetimes() -> None:
    assert encode(f.task_failed(4, "boom", "ValueError")) == (
        "TaskFailed",
        '{"timestamp":"2024-01-01T12:00:00","task_id":4,'
        '"failure":{"message":"boom","error_type":"ValueError","stack_trace":"Traceback: ..."}}',
    )
    type_name, payload = encode(ev.ContinuedAsNew(f.T0, None, (f.event_raised("a", 1),)))
    assert json.loads(payload)["carryover_events"] == [
        {"type": "EventRaised", "payload": '{"timestamp":"2024-01-01T12:00:00","name":"a","input":"1"}'}
    ]


def test_user_data_stays_json_text_inside_the_payload() -> None:
    _, payload = encode(f.task_completed(0, {"k": "v"}))
    assert json.loads(payload)["result"] == '{"k": "v"}'


def test_missing_optional_fields_take_their_defaults() -> None:
    assert decode("TaskScheduled", '{"timestamp":"2024-01-01T12:00:00","event_id":0,"name":"a"}') == ev.TaskScheduled(
        f.T0, 0, "a"
    )


def test_unknown_fields_are_ignored() -> None:
    assert decode("ExecutionResumed", '{"timestamp":"2024-01-01T12:00:00","future_field":1}') == f.resumed()


@pytest.mark.parametrize(
    ("type_name", "payload", "message"),
    [
        ("NoSuchEvent", "{}", "Unknown history event type 'NoSuchEvent'."),
        ("TaskCompleted", "not json", "Malformed TaskCompleted payload"),
        ("TaskCompleted", "[1, 2]", "Malformed TaskCompleted payload"),
        ("TaskCompleted", '{"task_id": 1}', "Malformed TaskCompleted payload"),
        ("TimerFired", '{"timestamp":"yesterday","timer_id":1,"fire_at":"x"}', "Malformed TimerFired payload"),
        (
            "TaskFailed",
            '{"timestamp":"2024-01-01T12:00:00","task_id":1,"failure":"oops"}',
            "Malformed TaskFailed payload",
        ),
    ],
)
def test_malformed_payloads_raise_codec_error(type_name, payload, message) -> None:
    with pytest.raises(CodecError) as info:
        decode(type_name, payload)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)
