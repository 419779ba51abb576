"""The timeline's bars and the shape's stages, from histories built event by event."""

from __future__ import annotations

from datetime import datetime, timedelta

from ledgerflow import history
from ledgerflow.dashboard import shape, timeline
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import EventRecord

T0 = datetime(2026, 1, 1, 12, 0, 0)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def entries(*events: ev.HistoryEvent) -> list[history.HistoryEntry]:
    return history.describe([EventRecord(0, n, *codec.encode(e), e.timestamp) for n, e in enumerate(events)])


def fan_out_with_retry(approved_ms: int, charge: bool) -> list[history.HistoryEntry]:
    """Two activities in parallel (the second fails once and is retried after a timer), a
    child workflow, a wait for an event, then (when `charge`) one more activity."""
    failure = ev.FailureDetails("scanner", "RuntimeError")
    run = [
        ev.OrchestratorStarted(at(0)), ev.ExecutionStarted(at(0), "Order"),
        ev.TaskScheduled(at(0), 0, "pack"), ev.TaskScheduled(at(0), 1, "pack"),
        ev.OrchestratorStarted(at(100)), ev.TaskCompleted(at(90), 0, '"ok"'), ev.TaskFailed(at(95), 1, failure),
        ev.TimerCreated(at(100), 2, at(300)),
        ev.OrchestratorStarted(at(310)), ev.TimerFired(at(300), 2, at(300)),
        ev.TaskScheduled(at(310), 3, "pack", attempt=2),
        ev.OrchestratorStarted(at(400)), ev.TaskCompleted(at(390), 3, '"ok"'),
        ev.SubOrchestrationInstanceCreated(at(400), 4, "Ship", "o-1:0004"),
        ev.OrchestratorStarted(at(500)), ev.SubOrchestrationInstanceCompleted(at(490), 4, '"shipped"'),
        ev.OrchestratorStarted(at(approved_ms + 10)), ev.EventRaised(at(approved_ms), "approval", "true"),
    ]
    if charge:
        run += [ev.TaskScheduled(at(approved_ms + 10), 5, "charge"),
                ev.OrchestratorStarted(at(approved_ms + 30)), ev.TaskCompleted(at(approved_ms + 20), 5, '"c"')]
    return entries(*run)


def test_each_attempt_timer_child_and_wait_is_a_bar_from_start_to_end() -> None:
    bars = timeline.bars(fan_out_with_retry(2000, charge=True))
    got = [(b.kind, b.label, b.status, b.start, b.end) for b in bars]
    assert got == [
        ("activity", "pack", "completed", at(0), at(90)),
        ("activity", "pack", "failed", at(0), at(95)),  # a fan-out: parallel bars
        ("retry", "retry delay", "fired", at(100), at(300)),
        ("activity", "pack (attempt 2)", "completed", at(310), at(390)),
        ("child", "Ship", "completed", at(400), at(490)),
        ("event", "event approval", "received", at(500), at(2000)),  # from the step that began the wait
        ("activity", "charge", "completed", at(2010), at(2020)),
    ]
    assert bars[4].child_id == "o-1:0004"
    drawn = timeline.layout(bars, at(5000))
    assert drawn.bars[0].x == 0 and abs(drawn.bars[-1].x + drawn.bars[-1].width - timeline.CHART_WIDTH) < 1e-6


def test_an_open_call_is_a_bar_to_now() -> None:
    bars = timeline.bars(entries(ev.OrchestratorStarted(at(0)), ev.ExecutionStarted(at(0), "W"),
                                 ev.TaskScheduled(at(0), 0, "slow")))
    assert [(b.status, b.end) for b in bars] == [("running", None)]
    assert timeline.layout(bars, at(1000)).bars[0].width == timeline.CHART_WIDTH


def test_runs_merge_into_stages_and_branch_where_they_differ() -> None:
    runs = [(shape.stages(fan_out_with_retry(1000, charge=True)), "COMPLETED"),
            (shape.stages(fan_out_with_retry(3000, charge=True)), "COMPLETED"),
            (shape.stages(fan_out_with_retry(2000, charge=False)), "COMPLETED")]
    root = shape.merge(runs)
    path, nodes, node = [], [], root
    while node.children:
        assert len(node.children) == 1
        node = next(iter(node.children.values()))
        nodes.append(node)
        path.append([item.text for item in node.items.values()])
    assert path == [["pack ×2 parallel · 90ms · 3 retries · 3 failed"], ["child workflow Ship · 90ms"],
                    ["wait for event approval · 1.5s"], ["charge · 10ms"]]
    assert [n.runs for n in nodes] == [3, 3, 3, 2]
    assert nodes[2].outcomes == {"COMPLETED": 1} and nodes[3].outcomes == {"COMPLETED": 2}  # the branch
    diagram = shape.draw(root)
    assert sorted(b.title for b in diagram.boxes if b.css.startswith("end")) == ["COMPLETED · 1", "COMPLETED · 2"]
    assert len(diagram.edges) == len(diagram.boxes) - 1  # a tree
