"""The shape of a workflow, drawn from its recorded histories.

Each run becomes a sequence of stages: one stage per orchestration step that started work
(several activities started in one step are a fan-out, shown as one stage with a count),
and one before it for the events that woke that step (a wait for an event). Retries belong
to the call they repeat. The runs are merged into a tree of stages: where runs took different
paths (a branch), the tree forks; every stage counts the runs that passed it and the median
time its work took; every path ends in the outcomes its runs had.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledgerflow.history import HistoryEntry, human_elapsed

Key = tuple[str, str]  # (kind, name): activity | child | timer | event

BOX_WIDTH = 300
LINE_HEIGHT = 18
BOX_PAD = 26
GAP_X = 30
GAP_Y = 46


@dataclass
class ItemStats:
    kind: str
    name: str
    fanout: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    retries: int = 0
    failures: int = 0

    @property
    def text(self) -> str:
        what = {"activity": self.name, "child": f"child workflow {self.name}", "timer": "timer",
                "event": f"wait for event {self.name}"}[self.kind]
        if self.fanout and max(self.fanout) > 1:
            low, high = min(self.fanout), max(self.fanout)
            what += f" ×{low}" if low == high else f" ×{low}-{high}"
            what += " parallel"
        parts = [what]
        if self.seconds:
            parts.append(human_elapsed(timedelta(seconds=statistics.median(self.seconds))))
        if self.retries:
            parts.append(f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}")
        if self.failures:
            parts.append(f"{self.failures} failed")
        return " · ".join(parts)


@dataclass
class Stage:
    """What one run did in one stage: per item, how many started, their durations, retries."""

    items: dict[Key, ItemStats] = field(default_factory=dict)

    def add(self, key: Key) -> ItemStats:
        item = self.items.setdefault(key, ItemStats(*key, fanout=[0]))
        item.fanout[0] += 1
        return item


@dataclass
class Node:
    """A stage of the merged runs: its items over every run that reached it."""

    items: dict[Key, ItemStats] = field(default_factory=dict)
    runs: int = 0
    children: dict[tuple[Key, ...], Node] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)


def stages(entries: Sequence[HistoryEntry]) -> list[Stage]:
    """One run's stages, in order."""
    found: list[Stage] = []
    started: dict[int, tuple[ItemStats, datetime]] = {}
    step_start: datetime | None = None
    previous: datetime | None = None
    woke = actions = Stage()
    failed_in_step = False

    def close() -> None:
        found.extend(s for s in (woke, actions) if s.items)

    for e in entries:
        if e.type == "OrchestratorStarted":
            close()
            woke, actions, failed_in_step = Stage(), Stage(), False
            previous, step_start = step_start, e.timestamp
        elif e.type == "EventRaised":
            item = woke.add(("event", e.name or "?"))
            since = previous or e.timestamp  # the step that began the wait
            item.seconds.append(max((e.timestamp - since).total_seconds(), 0.0))
        elif e.type in ("TaskFailed", "SubOrchestrationInstanceFailed"):
            failed_in_step = True
            _finish(started, e, failed=True)
        elif e.type in ("TaskCompleted", "SubOrchestrationInstanceCompleted", "TimerFired"):
            _finish(started, e, failed=False)
        elif e.type in ("TaskScheduled", "SubOrchestrationInstanceCreated", "TimerCreated"):
            _schedule(e, actions, found, started, failed_in_step)
    close()
    return found


def _schedule(e: HistoryEntry, actions: Stage, found: list[Stage],
              started: dict[int, tuple[ItemStats, datetime]], failed_in_step: bool) -> None:
    kind = {"TaskScheduled": "activity", "SubOrchestrationInstanceCreated": "child"}.get(e.type, "timer")
    if kind == "timer" and failed_in_step:
        return  # the delay before a retry: part of the call it repeats
    key = (kind, "" if kind == "timer" else e.name or "?")
    if e.event.get("attempt", 1) > 1:
        retried = next((s.items[key] for s in reversed(found) if key in s.items), None)
        item = retried or actions.add(key)
        item.retries += 1
    else:
        item = actions.add(key)
    if e.event_id is not None:
        started[e.event_id] = (item, e.timestamp)


def _finish(started: dict[int, tuple[ItemStats, datetime]], e: HistoryEntry, *, failed: bool) -> None:
    if e.event_id not in started:
        return
    item, began = started.pop(e.event_id)
    item.seconds.append(max((e.timestamp - began).total_seconds(), 0.0))
    item.failures += failed


def merge(runs: Sequence[tuple[list[Stage], str]]) -> Node:
    """The tree of every run's stages; `runs` holds (stages, final status) per run."""
    root = Node()
    for run, outcome in runs:
        node = root
        node.runs += 1
        for stage in run:
            key = tuple(sorted(stage.items))
            node = node.children.setdefault(key, Node())
            node.runs += 1
            for k, item in stage.items.items():
                into = node.items.setdefault(k, ItemStats(*k))
                into.fanout += item.fanout
                into.seconds += item.seconds
                into.retries += item.retries
                into.failures += item.failures
        node.outcomes[outcome] += 1
    return root


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float
    title: str
    lines: list[tuple[str, str]]  # (kind, text)
    css: str


@dataclass(frozen=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str


@dataclass
class Diagram:
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def draw(root: Node) -> Diagram:
    """Boxes and edges: a stage per box, top to bottom; branches side by side."""
    diagram = Diagram()
    _place(root, 0, 10.0, diagram, f"start · {_runs(root.runs)}", "start")
    diagram.width += 20
    diagram.height += 20
    return diagram


def _place(node: Node, column: int, y: float, diagram: Diagram, title: str, css: str) -> tuple[int, float]:
    """Place `node` and its subtree from `column` on; returns (columns used, x centre)."""
    lines = [(item.kind, item.text) for item in node.items.values()]
    height = BOX_PAD + LINE_HEIGHT * len(lines)
    below = y + height + GAP_Y
    endings = [(f"{status} · {n}", "end " + status.lower()) for status, n in node.outcomes.most_common()]
    used, centres = 0, []
    for child in node.children.values():
        width, centre = _place(child, column + used, below, diagram, _runs(child.runs), "stage")
        used += width
        centres.append((centre, _runs(child.runs)))
    for text, end_css in endings:
        x = (column + used) * (BOX_WIDTH + GAP_X) + 10
        diagram.boxes.append(Box(x, below, BOX_WIDTH, BOX_PAD, text, [], end_css))
        centres.append((x + BOX_WIDTH / 2, ""))
        diagram.height = max(diagram.height, below + BOX_PAD)
        used += 1
    used = max(used, 1)
    left = column * (BOX_WIDTH + GAP_X) + 10
    x = left + (used * (BOX_WIDTH + GAP_X) - GAP_X - BOX_WIDTH) / 2
    diagram.boxes.append(Box(x, y, BOX_WIDTH, height, title, lines, css))
    for centre, label in centres:
        diagram.edges.append(Edge(x + BOX_WIDTH / 2, y + height, centre, below, label if len(centres) > 1 else ""))
    diagram.width = max(diagram.width, left + used * (BOX_WIDTH + GAP_X))
    diagram.height = max(diagram.height, y + height)
    return used, x + BOX_WIDTH / 2


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"
