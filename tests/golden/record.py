"""Record the golden histories: drive the engine step by step, feeding completions.

    python -m tests.golden.record            # write the histories that are missing
    python -m tests.golden.record --force    # rewrite all (only for an intended change)

Each scenario runs as instance `golden-<name>` and is written to `histories/<name>.json`
as a list of `{"type", "payload"}` pairs from `orchestrator.engine.codec.encode`. The stack
trace of a FAILED run is dropped (it holds file paths and line numbers); everything else is
what the engine produced. Recording with `--force` after a change to `workflows.py` hides the
very breakage the golden replay exists to catch: record new scenarios, do not re-record old
ones.

Three scenarios are recorded with code that differs from `workflows.py` on purpose:
`versioned_v1` (a run that began when v1 was the only version), `patched_before` (a run
recorded before the `send-receipt` patch existed) and `nondeterministic` (recorded when the
workflow called `reserve`; the current code calls `reserve_v2`, so its replay must fail).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ledgerflow.registration import Registrar
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from tests.golden import workflows
from tests.unit.engine import factories as f

HISTORIES = Path(__file__).resolve().parent / "histories"


def _before_patch(ctx):
    yield ctx.call_activity("charge")
    yield ctx.call_activity("ship")
    return "shipped"


def _reserve_then_charge(ctx):
    yield ctx.call_activity("reserve")
    yield ctx.call_activity("charge")


def _recording_registrar(name: str) -> Registrar:
    """The code each scenario was recorded with: the current code but for three scenarios."""
    if name == "versioned_v1":
        return workflows.register(Registrar(), with_versions=("v1",))
    if name in ("patched_before", "nondeterministic"):
        wfr = Registrar()
        wfr.register_workflow(_before_patch, name="patched")
        wfr.register_workflow(_reserve_then_charge, name="nondeterministic")
        return wfr
    return workflows.registrar()


@dataclass
class Scenario:
    name: str
    workflow: str
    input: Any = None
    #: (seconds after T0, events fed in that step); the first step gets ExecutionStarted.
    steps: list[tuple[float, list[ev.HistoryEvent]]] = field(default_factory=list)


def _scenarios() -> list[Scenario]:
    at = f.at
    return [
        Scenario(
            "chain",
            "chain",
            ["ann", "bob", "cy"],
            [
                (1, [f.task_completed(0, "Hello ann", t=at(1))]),
                (2, [f.task_completed(1, "Hello bob", t=at(2))]),
                (3, [f.task_completed(2, "Hello cy", t=at(3))]),
            ],
        ),
        Scenario(
            "fan_out",
            "fan_out",
            4,
            [
                (1, [f.task_completed(2, 4, t=at(1)), f.task_completed(0, 0, t=at(1))]),
                (2, [f.task_completed(3, 9, t=at(2)), f.task_completed(1, 1, t=at(2))]),
                (3, [f.task_completed(4, 14, t=at(3))]),
            ],
        ),
        Scenario(
            "timers_and_events",
            "timers_and_events",
            None,
            [
                (10, [f.event_raised("Approval", {"by": "ann"}, t=at(10))]),
                (40, [f.timer_fired(1, at(40))]),
                (45, [f.timer_fired(2, at(45))]),
                (50, [f.event_raised("RACE", "won", t=at(50))]),
            ],
        ),
        Scenario(
            "retries",
            "retries",
            None,
            [
                (1, [f.task_failed(0, "flaky once", "IOError", t=at(1))]),
                (3, [f.timer_fired(1, at(3))]),
                (4, [f.task_completed(2, "ok", t=at(4))]),
                (5, [f.task_failed(3, "doomed 1", t=at(5))]),
                (7, [f.timer_fired(4, at(7))]),
                (8, [f.task_failed(5, "doomed 2", t=at(8))]),
                (12, [f.timer_fired(6, at(12))]),
                (13, [f.task_failed(7, "doomed 3", t=at(13))]),
                (21, [f.timer_fired(8, at(21))]),
                (22, [f.task_failed(9, "doomed 4", t=at(22))]),
            ],
        ),
        Scenario(
            "child_workflows",
            "parent",
            2,
            [
                (1, [f.child_completed(1, 2, t=at(1)), f.child_completed(0, 0, t=at(1))]),
                (2, [f.child_failed(2, "negative input", "ValueError", t=at(2))]),
            ],
        ),
        Scenario(
            "continue_as_new",
            "looping",
            0,
            [
                (
                    1,
                    [
                        f.event_raised("tick", 1, t=at(1)),
                        f.event_raised("tick", 2, t=at(1)),
                        f.event_raised("other", "x", t=at(1)),
                    ],
                ),
            ],
        ),
        Scenario(
            "suspend_resume",
            "suspendable",
            None,
            [
                (1, [f.suspended("maintenance", t=at(1))]),
                (2, [f.task_completed(0, 1, t=at(2))]),
                (3, [f.resumed(t=at(3))]),
                (4, [f.task_completed(1, 2, t=at(4))]),
            ],
        ),
        Scenario(
            "terminated",
            "long_running",
            None,
            [
                (1, [f.child_completed(1, "done", t=at(1))]),
                (2, [f.terminated({"by": "operator"}, t=at(2))]),
            ],
        ),
        Scenario("versioned_v1", "pricing", 100, [(1, [f.task_completed(0, 110, t=at(1))])]),
        Scenario(
            "versioned_v2",
            "pricing",
            100,
            [
                (1, [f.task_completed(0, 120, t=at(1))]),
                (2, [f.task_completed(1, 24, t=at(2))]),
            ],
        ),
        Scenario(
            "patched_before",
            "patched",
            None,
            [
                (1, [f.task_completed(0, t=at(1))]),
                (2, [f.task_completed(1, t=at(2))]),
            ],
        ),
        Scenario(
            "patched_after",
            "patched",
            None,
            [
                (1, [f.task_completed(0, t=at(1))]),
                (2, [f.task_completed(1, t=at(2))]),
                (3, [f.task_completed(2, t=at(3))]),
            ],
        ),
        Scenario("helpers", "helpers", None, [(1, [f.timer_fired(0, at(1))])]),
        Scenario(
            "serialization",
            "serialization",
            workflows.Shipment("o-1", [{"sku": "A", "qty": 2}]),
            [
                (1, [f.task_completed(0, SimpleNamespace(code="LBL-1"), t=at(1))]),
            ],
        ),
        Scenario(
            "failing",
            "failing",
            None,
            [
                (1, [f.task_completed(0, t=at(1))]),
                (2, [f.task_failed(1, "disk full", "OSError", t=at(2))]),
            ],
        ),
        Scenario("in_progress", "in_progress", None, [(1, [f.task_completed(0, t=at(1))])]),
        Scenario("nondeterministic", "nondeterministic", None, [(1, [f.task_completed(0, t=at(1))])]),
    ]


def instance_id(name: str) -> str:
    return f"golden-{name}"


def _without_trace(event: ev.HistoryEvent) -> ev.HistoryEvent:
    if isinstance(event, ev.ExecutionCompleted) and event.failure is not None:
        return dataclasses.replace(event, failure=dataclasses.replace(event.failure, stack_trace=None))
    return event


def record(scenario: Scenario) -> list[ev.HistoryEvent]:
    run = f.Run(_recording_registrar(scenario.name).registry, instance_id(scenario.name))
    run.start(scenario.workflow, scenario.input)
    for seconds, events in scenario.steps:
        run.step(events, t=f.at(seconds))
    return [_without_trace(e) for e in run.history]


def dump(events: list[ev.HistoryEvent]) -> str:
    pairs = [{"type": t, "payload": p} for t, p in map(codec.encode, events)]
    return json.dumps(pairs, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None, out: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rewrite existing histories")
    args = parser.parse_args(argv)
    HISTORIES.mkdir(exist_ok=True)
    for scenario in _scenarios():
        path = HISTORIES / f"{scenario.name}.json"
        if path.exists() and not args.force:
            out(f"kept     {path.name}")
            continue
        path.write_text(dump(record(scenario)), encoding="utf-8")
        out(f"recorded {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
