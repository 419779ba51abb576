"""What the pages read, each in one blocking call (run in a worker thread): a page of the
list, one instance with everything its page shows, and the runs a workflow's shape is drawn from."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from ledgerflow import history
from ledgerflow.access import HistoryTamperedError
from ledgerflow.dashboard import shape, timeline
from ledgerflow.management import WorkflowManager, to_state
from ledgerflow.state import WorkflowState
from persistence.listing import InstanceFilter, Position
from persistence.records import InstanceRecord, utcnow

PAGE_SIZE = 50
SHAPE_RUNS = 30
MAX_CHILDREN = 200
#: An instance page shows at most this many bars and history rows (the latest ones); a long
#: workflow says how many it leaves out.
MAX_BARS = 300
MAX_EVENTS = 1000
#: A workflow's shape follows each run for at most this many stages.
MAX_STAGES = 60


# -- the list --------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list[InstanceRecord]
    newer: str | None  # cursor of the page before, None on the first
    older: str | None  # cursor of the page after, None on the last


def list_page(manager: WorkflowManager, f: InstanceFilter, *, newest_first: bool, after: str | None,
              before: str | None) -> Page:
    """A keyset page: `after` continues in the sort order, `before` goes back."""
    store = manager.store
    if before is not None:
        rows = store.page_instances(f, newest_first=not newest_first, after=decode_cursor(before),
                                    limit=PAGE_SIZE + 1)
        more_back = len(rows) > PAGE_SIZE
        rows = list(reversed(rows[:PAGE_SIZE]))
        back, forward = more_back, True
    else:
        rows = store.page_instances(f, newest_first=newest_first,
                                    after=decode_cursor(after) if after else None, limit=PAGE_SIZE + 1)
        back, forward = after is not None, len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    return Page(rows, encode_cursor(rows[0]) if back and rows else None,
                encode_cursor(rows[-1]) if forward and rows else None)


def encode_cursor(row: InstanceRecord) -> str:
    text = f"{row.created_at.isoformat()}|{row.instance_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, instance_id = text.partition("|")
        created = datetime.fromisoformat(stamp)
    except ValueError:
        raise ValueError("the page link is damaged; start again from the first page") from None
    return Position(created if created.tzinfo else created.replace(tzinfo=timezone.utc), instance_id)


# -- one instance ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceView:
    record: InstanceRecord
    state: WorkflowState
    verification: tuple[str, str] | None  # (css class, text), for signed histories
    entries: list[history.HistoryEntry]  # the latest MAX_EVENTS
    events_left_out: int
    timeline: timeline.Timeline  # the latest MAX_BARS
    bars_left_out: int
    children: list[tuple[int, InstanceRecord]]  # (depth, child), depth first

    @property
    def watched(self) -> str:
        return " ".join([self.record.instance_id, *(c.instance_id for _, c in self.children)])


def instance_view(manager: WorkflowManager, instance_id: str, app_id: str) -> InstanceView | None:
    record = manager.store.get_instance(instance_id)
    if record is None or record.app_id != app_id:
        return None
    manager.access.check("get", record=record)
    verification = _verification(manager, record)
    entries = [] if verification and verification[0] == "bad" else history.describe(manager.store.history(instance_id))
    bars = timeline.bars(entries)
    return InstanceView(record, to_state(record, True), verification, entries[-MAX_EVENTS:],
                        max(len(entries) - MAX_EVENTS, 0), timeline.layout(bars[-MAX_BARS:], utcnow()),
                        max(len(bars) - MAX_BARS, 0), _descendants(manager, instance_id))


def _verification(manager: WorkflowManager, record: InstanceRecord) -> tuple[str, str] | None:
    if not record.signed:
        return None
    if not manager.access.can_verify():
        return "unknown", "signed; not verified here: this process holds no CA bundle"
    try:
        manager.access.verify_read(manager.store, record)
    except HistoryTamperedError as exc:
        return "bad", f"verification failed: {exc}"
    return "good", f"signed; the history verified ({record.signed_events} events signed)"


def _descendants(manager: WorkflowManager, instance_id: str) -> list[tuple[int, InstanceRecord]]:
    found: list[tuple[int, InstanceRecord]] = []
    stack = [(1, c) for c in reversed(manager.store.children(instance_id))]
    while stack and len(found) < MAX_CHILDREN:
        depth, child = stack.pop()
        found.append((depth, child))
        stack.extend((depth + 1, c) for c in reversed(manager.store.children(child.instance_id)))
    return found


def pretty(text: str | None) -> str | None:
    """JSON text indented for reading (as it is when it is not JSON)."""
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# -- the shape of a workflow -----------------------------------------------------------


@dataclass(frozen=True)
class ShapeView:
    runs: int
    counts: dict[str, int]
    diagram: shape.Diagram


def shape_view(manager: WorkflowManager, name: str, app_id: str | None) -> ShapeView:
    """Drawn from the latest `SHAPE_RUNS` runs of `name`."""
    f = InstanceFilter(app_id=app_id, name=name)
    records = manager.store.page_instances(f, limit=SHAPE_RUNS)
    runs: list[tuple[list[shape.Stage], str]] = []
    for record in records:
        try:
            entries = history.describe(manager.store.history(record.instance_id))
        except Exception:  # purged meanwhile
            continue
        runs.append((shape.stages(entries)[:MAX_STAGES], record.status))
    return ShapeView(len(runs), manager.store.count_by_status(f), shape.draw(shape.merge(runs)))
