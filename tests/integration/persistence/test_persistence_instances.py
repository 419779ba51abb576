"""Instances outside a step: create, replace, enqueue, queries and purge (both dialects)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from persistence import errors, records
from persistence.records import NewInstance, NewOutbox
from persistence.store import Store
from tests.integration.persistence import builders as b


def test_create_instance_writes_row_start_message_and_outbox(store: Store) -> None:
    before = b.now()
    ids = b.create(store, "wf-1", input='{"x": 1}')
    inst = store.get_instance("wf-1")
    assert inst is not None
    assert (inst.app_id, inst.name, inst.status, inst.input) == ("app", "wf", "PENDING", '{"x": 1}')
    assert (inst.generation, inst.step_count, inst.signed) == (0, 0, False)
    assert inst.output is inst.failure is inst.custom_status is inst.completed_at is None
    assert inst.created_at.tzinfo is not None and inst.created_at >= before - timedelta(seconds=1)
    assert inst.updated_at == inst.created_at
    assert len(ids) == 1
    with store.step("wf-1") as tx:
        inbox = tx.visible_inbox(b.now())
    assert [(m.message_id, m.type) for m in inbox] == [("start", "ExecutionStarted")]
    due = b.due_outbox(store, b.later(10))
    assert [(o.id, o.kind, o.instance_id) for o in due] == [(ids[0], "orchestrate", "wf-1")]


def test_start_message_is_visible_at_start_at_by_default(store: Store) -> None:
    start_at = b.later(60)
    b.create(store, "wf-1", start_at=start_at)
    assert store.get_instance("wf-1").start_at == start_at
    with store.step("wf-1") as tx:
        assert tx.visible_inbox(b.now()) == []
        [msg] = tx.visible_inbox(start_at)
    assert msg.visible_at == start_at
    assert store.pending_instances(b.now()) == []
    assert store.pending_instances(start_at) == [("wf-1", "app")]


@pytest.mark.parametrize("status", ["PENDING", "RUNNING", "SUSPENDED", "STALLED"])
def test_create_over_an_active_instance_raises(store: Store, status: str) -> None:
    b.create(store, "wf-1", input="first")
    if status != "PENDING":
        b.set_status(store, "wf-1", status)
    with pytest.raises(errors.InstanceAlreadyExists) as info:
        b.create(store, "wf-1", input="second")
    assert str(info.value) == (
        f"workflow instance 'wf-1' already exists and is {status}; "
        "terminate or purge it first, or use another instance ID"
    )
    assert store.get_instance("wf-1").input == "first"
    assert b.row_counts(store, "wf-1")["inbox"] == 1


@pytest.mark.parametrize("status", sorted(records.TERMINAL_STATUSES))
def test_create_over_a_terminal_instance_replaces_it(store: Store, status: str) -> None:
    b.create(store, "wf-1", input="first", name="old")
    b.fill(store, "wf-1")
    with store.step("wf-1") as tx:
        tx.update_instance(status=status, output="done", custom_status="cs")
    old = store.get_instance("wf-1")
    b.create(store, "wf-1", input="second", name="new")
    new = store.get_instance("wf-1")
    assert (new.name, new.input, new.status, new.generation) == ("new", "second", "PENDING", 0)
    assert new.output is new.custom_status is new.completed_at is None
    assert new.step_count == old.step_count + 1  # the fencing counter never goes back
    assert store.history("wf-1") == []
    assert b.row_counts(store, "wf-1") == {
        "history_events": 0, "inbox": 1, "timers": 0, "outbox": 1, "instances": 1,
    }


def test_get_instance_of_unknown_id_is_none(store: Store) -> None:
    assert store.get_instance("nope") is None


def test_enqueue_skips_message_ids_already_there(store: Store) -> None:
    b.create(store, "wf-1")
    assert store.enqueue("wf-1", [b.message("a"), b.message("b")]) == 2
    assert store.enqueue("wf-1", [b.message("a"), b.message("c"), b.message("c")]) == 1
    assert store.enqueue("wf-1", [b.message("start")]) == 0
    with store.step("wf-1") as tx:
        ids = [m.message_id for m in tx.visible_inbox(b.now())]
    assert ids == ["start", "a", "b", "c"]


def test_enqueue_writes_outbox_only_when_a_message_was_new(store: Store) -> None:
    b.create(store, "wf-1")
    before = b.row_counts(store, "wf-1")["outbox"]
    wake = NewOutbox("app", "orchestrate", "{}")  # instance_id defaults to wf-1
    assert store.enqueue("wf-1", [b.message("a")], [wake]) == 1
    assert store.enqueue("wf-1", [b.message("a")], [wake]) == 0
    assert b.row_counts(store, "wf-1")["outbox"] == before + 1


def test_enqueue_to_unknown_instance_raises(store: Store) -> None:
    with pytest.raises(errors.InstanceNotFound, match="'ghost' does not exist"):
        store.enqueue("ghost", [b.message("a")])
    assert b.total_rows(store) == 0


def test_history_of_unknown_instance_raises(store: Store) -> None:
    with pytest.raises(errors.InstanceNotFound):
        store.history("ghost")


def test_list_instances_filters(store: Store) -> None:
    t0 = b.now() - timedelta(hours=1)
    for i in range(6):
        b.create(store, f"wf-{i}", app_id="a" if i < 4 else "b", name="even" if i % 2 == 0 else "odd",
                 created_at=t0 + timedelta(minutes=i))
    b.set_status(store, "wf-0", "COMPLETED")
    b.set_status(store, "wf-1", "FAILED")

    def ids(**kw: object) -> list[str]:
        return [r.instance_id for r in store.list_instances(**kw)]

    assert ids() == [f"wf-{i}" for i in range(6)]
    assert ids(app_id="b") == ["wf-4", "wf-5"]
    assert ids(name="even") == ["wf-0", "wf-2", "wf-4"]
    assert ids(app_id="a", name="odd") == ["wf-1", "wf-3"]
    assert ids(statuses=["COMPLETED", "FAILED"]) == ["wf-0", "wf-1"]
    assert ids(statuses=[]) == []
    assert ids(created_after=t0 + timedelta(minutes=2)) == ["wf-2", "wf-3", "wf-4", "wf-5"]
    assert ids(created_before=t0 + timedelta(minutes=2)) == ["wf-0", "wf-1"]
    assert ids(limit=2, offset=3) == ["wf-3", "wf-4"]
    assert store.list_instances(app_id="a")[0].created_at == t0


def test_children_and_unfinished_instances(store: Store) -> None:
    b.create(store, "parent")
    b.create(store, "child-1", parent="parent")
    b.create(store, "child-2", parent="parent")
    b.create(store, "other", app_id="other-app")
    b.set_status(store, "child-2", "COMPLETED")
    assert [c.instance_id for c in store.children("parent")] == ["child-1", "child-2"]
    assert store.children("child-1") == []
    assert [i.instance_id for i in store.unfinished_instances("app")] == ["parent", "child-1"]
    child = store.get_instance("child-1")
    assert (child.parent_instance_id, child.parent_app_id, child.parent_task_id) == ("parent", "app", 0)


def _tree(store: Store) -> None:
    """root -> (c1 -> g1, c2); plus an unrelated instance."""
    for iid, parent in [("root", None), ("c1", "root"), ("c2", "root"), ("g1", "c1"), ("x", None)]:
        b.create(store, iid, parent=parent)
        b.fill(store, iid)


def test_purge_unknown_instance_raises(store: Store) -> None:
    with pytest.raises(errors.InstanceNotFound):
        store.purge("ghost")


def test_purge_refuses_a_running_instance(store: Store) -> None:
    b.create(store, "wf-1")
    b.set_status(store, "wf-1", "RUNNING")
    with pytest.raises(errors.InstanceNotTerminal, match="'wf-1' is RUNNING"):
        store.purge("wf-1")
    assert store.get_instance("wf-1") is not None


def test_purge_recursive_deletes_every_row_of_the_tree(store: Store) -> None:
    _tree(store)
    for iid in ("root", "c1", "c2", "g1"):
        b.set_status(store, iid, "COMPLETED")
    counts = {iid: sum(b.row_counts(store, iid).values()) for iid in ("root", "c1", "c2", "g1")}
    untouched = b.row_counts(store, "x")
    assert store.purge("root") == sum(counts.values())
    for iid in ("root", "c1", "c2", "g1"):
        assert b.row_counts(store, iid) == dict.fromkeys(b.row_counts(store, iid), 0)
    assert b.row_counts(store, "x") == untouched


def test_purge_refuses_when_a_descendant_is_not_terminal(store: Store) -> None:
    _tree(store)
    for iid in ("root", "c1", "c2"):
        b.set_status(store, iid, "TERMINATED")
    before = b.total_rows(store)
    with pytest.raises(errors.InstanceNotTerminal) as info:
        store.purge("root")
    assert info.value.instance_id == "g1" and "a descendant of 'root'" in str(info.value)
    assert b.total_rows(store) == before


def test_purge_not_recursive_leaves_children(store: Store) -> None:
    _tree(store)
    b.set_status(store, "root", "FAILED")
    assert store.purge("root", recursive=False) == sum(
        {"history_events": 2, "inbox": 2, "timers": 1, "outbox": 2, "instances": 1}.values()
    )
    assert store.get_instance("root") is None
    assert store.get_instance("c1") is not None and store.get_instance("g1") is not None


def test_new_instance_defaults() -> None:
    new = NewInstance("id", "app", "wf")
    assert (new.status, new.input, new.created_at, new.start_at) == ("PENDING", None, None, None)
