"""An instance's history as a Gantt chart: one bar per activity attempt, child workflow,
timer and wait for an event, from scheduled to completed, laid out for an SVG the page draws.

Retries are separate bars (each attempt is its own `TaskScheduled`); the activities of a
fan-out start together and so stand as parallel bars. A wait for an event is not recorded
when it begins, only when the event arrives: its bar runs from the last step before the event
(when the workflow was last running) to the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledgerflow.history import HistoryEntry, human_elapsed

CHART_WIDTH = 760
ROW_HEIGHT = 22
MIN_BAR = 3

_SCHEDULED = {"TaskScheduled": "activity", "SubOrchestrationInstanceCreated": "child", "TimerCreated": "timer"}
_ENDED = {"TaskCompleted": "completed", "TaskFailed": "failed", "SubOrchestrationInstanceCompleted": "completed",
          "SubOrchestrationInstanceFailed": "failed", "TimerFired": "fired"}


@dataclass
class Bar:
    kind: str  # activity | child | timer | retry | event
    label: str
    start: datetime
    end: datetime | None  # None: still open
    status: str  # running | completed | failed | fired | received
    detail: str = ""
    child_id: str | None = None
    child_app: str | None = None
    x: float = 0.0
    width: float = 0.0
    y: float = 0.0

    @property
    def duration(self) -> str:
        return "open" if self.end is None else human_elapsed(self.end - self.start)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    ticks: list[Tick]
    width: int
    height: int


def bars(entries: Sequence[HistoryEntry]) -> list[Bar]:
    """The bars of one generation's history, in order of their start."""
    open_bars: dict[int, Bar] = {}
    found: list[Bar] = []
    steps: list[datetime] = []
    for e in entries:
        last_step = steps[-1] if steps else None
        if e.type == "OrchestratorStarted":
            steps.append(e.timestamp)
        elif e.type in _SCHEDULED and e.event_id is not None:
            bar = _scheduled(e)
            if bar.kind == "activity" and e.event.get("attempt", 1) > 1:
                _mark_retry_timer(found, last_step)
            open_bars[e.event_id] = bar
            found.append(bar)
        elif e.type in _ENDED and e.event_id in open_bars:
            bar = open_bars.pop(e.event_id)
            bar.end, bar.status = e.timestamp, _ENDED[e.type]
            bar.detail = e.details or bar.detail
        elif e.type == "EventRaised":  # the wait began in the last step before the event was sent
            start = max((t for t in steps if t <= e.timestamp), default=e.timestamp)
            found.append(Bar("event", f"event {e.name}", start, e.timestamp, "received", e.details or ""))
    return sorted(found, key=lambda b: b.start)


def _scheduled(e: HistoryEntry) -> Bar:
    kind = _SCHEDULED[e.type]
    attempt = e.event.get("attempt", 1)
    if kind == "timer":
        label = "timer"
    else:
        label = (e.name or "?") + (f" (attempt {attempt})" if attempt > 1 else "")
    child = e.event.get("instance_id") if kind == "child" else None
    return Bar(kind, label, e.timestamp, None, "running", e.details or "", child_id=child,
               child_app=e.event.get("app_id") if child else None)


def _mark_retry_timer(found: list[Bar], step: datetime | None) -> None:
    """A retry waits on a durable timer that fired in the step that schedules the retry."""
    for bar in reversed(found):
        if bar.kind == "timer" and bar.end is not None and step is not None and bar.end <= step:
            bar.kind, bar.label = "retry", "retry delay"
            return


def layout(found: list[Bar], now: datetime) -> Timeline:
    """Positions for the SVG: x from the first start to the last end (now, while open)."""
    if not found:
        return Timeline([], [], CHART_WIDTH, 0)
    begin = min(b.start for b in found)
    finish = max([b.end or now for b in found] + [begin + timedelta(milliseconds=1)])
    span = (finish - begin).total_seconds()
    scale = CHART_WIDTH / span
    for row, bar in enumerate(found):
        bar.x = (bar.start - begin).total_seconds() * scale
        bar.width = max(((bar.end or now) - bar.start).total_seconds() * scale, MIN_BAR)
        bar.y = row * ROW_HEIGHT
    ticks = [Tick(CHART_WIDTH * i / 4, human_elapsed(timedelta(seconds=span * i / 4))) for i in range(5)]
    return Timeline(found, ticks, CHART_WIDTH, len(found) * ROW_HEIGHT)
