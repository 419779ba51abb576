"""The step transaction: commit, rollback, history key, generations (both dialects)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from persistence import errors
from persistence.records import NewInstance, NewOutbox, NewTimer
from persistence.store import Store
from tests.integration.persistence import builders as b


def test_leaving_the_block_commits(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        assert tx.instance is not None and tx.instance.status == "PENDING"
        [start] = tx.visible_inbox(b.now())
        tx.append_history([b.event(0, "ExecutionStarted"), b.event(1)])
        assert tx.delete_inbox([start.id]) == 1
        tx.update_instance(status="RUNNING", custom_status='"half"')
    events = store.history("wf-1")
    assert [(e.generation, e.sequence, e.type) for e in events] == [
        (0, 0, "ExecutionStarted"), (0, 1, "TaskScheduled"),
    ]
    assert events[0].timestamp.tzinfo == timezone.utc
    inst = store.get_instance("wf-1")
    assert (inst.status, inst.custom_status, inst.step_count) == ("RUNNING", '"half"', 1)
    assert store.pending_instances(b.now()) == []


def test_an_exception_rolls_back(store: Store) -> None:
    b.create(store, "wf-1")
    with pytest.raises(RuntimeError, match="boom"):
        with store.step("wf-1") as tx:
            tx.append_history([b.event(0)])
            tx.delete_inbox([m.id for m in tx.visible_inbox(b.now())])
            tx.add_timers([NewTimer(1, b.later(5))])
            tx.add_outbox([NewOutbox("app", "activity", "{}", dedup_key="t0")])
            tx.update_instance(status="RUNNING")
            raise RuntimeError("boom")
    assert store.history("wf-1") == []
    assert store.get_instance("wf-1").status == "PENDING"
    assert b.row_counts(store, "wf-1") == {
        "history_events": 0, "inbox": 1, "timers": 0, "outbox": 1, "instances": 1,
    }


def test_step_on_unknown_instance(store: Store) -> None:
    with store.step("ghost") as tx:
        assert tx.instance is None
        assert tx.visible_inbox(b.now()) == []
        with pytest.raises(errors.InstanceNotFound):
            tx.history()
        with pytest.raises(errors.InstanceNotFound):
            tx.append_history([b.event(0)])
        with pytest.raises(errors.InstanceNotFound):
            tx.update_instance(status="RUNNING")


def test_the_tx_is_dead_after_the_block(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        pass
    with pytest.raises(RuntimeError, match="is over"):
        tx.visible_inbox(b.now())


def test_a_duplicate_append_raises_instead_of_forking(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        tx.append_history([b.event(0), b.event(1)])
    with pytest.raises(errors.HistoryConflict) as info:
        with store.step("wf-1") as tx:
            tx.update_instance(status="RUNNING")
            tx.append_history([b.event(1, "TaskCompleted"), b.event(2)])
    assert info.value.generation == 0 and "roll this step back" in str(info.value)
    assert [e.type for e in store.history("wf-1")] == ["TaskScheduled", "TaskScheduled"]
    assert store.get_instance("wf-1").status == "PENDING"  # the whole step rolled back


def test_a_stale_writer_is_refused(store: Store) -> None:
    """Two steps that both read history of length 1 cannot both append sequence 1."""
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        tx.append_history([b.event(0)])
    seen = []
    for _ in range(2):
        seen.append(len(store.history("wf-1")))
    with store.step("wf-1") as tx:
        tx.append_history([b.event(seen[0])])
    with pytest.raises(errors.HistoryConflict):
        with store.step("wf-1") as tx:
            tx.append_history([b.event(seen[1])])
    assert len(store.history("wf-1")) == 2


def test_visible_inbox_respects_visible_at_and_arrival_order(store: Store) -> None:
    b.create(store, "wf-1")
    store.enqueue("wf-1", [b.message("late", visible_at=b.later(60)), b.message("now")])
    with store.step("wf-1") as tx:
        assert [m.message_id for m in tx.visible_inbox(b.now())] == ["start", "now"]
        assert [m.message_id for m in tx.visible_inbox(b.later(61))] == ["start", "late", "now"]
        msg = tx.visible_inbox(b.now())[1]
        assert msg.visible_at.tzinfo == timezone.utc and msg.instance_id == "wf-1"


def test_timers_add_and_delete(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        ids = tx.add_timers([NewTimer(1, b.later(5)), NewTimer(2, b.later(6)), NewTimer(3, b.later(7))])
        assert len(set(ids)) == 3
    with store.step("wf-1") as tx:
        assert tx.delete_timers([2]) == 1
    assert b.row_counts(store, "wf-1")["timers"] == 2
    with store.step("wf-1") as tx:
        assert tx.delete_timers() == 2


def test_outbox_defaults_to_the_step_instance_and_deletes_by_dedup_key(store: Store) -> None:
    b.create(store, "wf-1")
    b.create(store, "wf-2")
    with store.step("wf-2") as tx:
        tx.add_outbox([NewOutbox("app", "activity", "{}", dedup_key="task:0")])
    with store.step("wf-1") as tx:
        ids = tx.add_outbox([
            NewOutbox("app", "activity", "a", dedup_key="task:0"),
            NewOutbox("billing", "activity", "b", dedup_key="task:1"),
            NewOutbox("app", "orchestrate", "c"),
        ])
        assert ids == sorted(ids) and len(ids) == 3
    rows = {o.id: o for o in b.due_outbox(store, b.later(10))}
    assert [rows[i].payload for i in ids] == ["a", "b", "c"]
    assert {rows[i].instance_id for i in ids} == {"wf-1"}
    assert rows[ids[1]].app_id == "billing" and rows[ids[1]].attempts == 0
    with store.step("wf-1") as tx:
        assert tx.delete_outbox(["task:0", "task:9"]) == 1
    assert b.row_counts(store, "wf-1")["outbox"] == 3  # start's orchestrate + 2
    assert b.row_counts(store, "wf-2")["outbox"] == 2  # another instance's task:0 stays


def test_update_instance_bumps_the_fencing_counter(store: Store) -> None:
    b.create(store, "wf-1")
    created = store.get_instance("wf-1")
    with store.step("wf-1") as tx:
        first = tx.update_instance()
        second = tx.update_instance(status="RUNNING", output=None, custom_status='"v2"')
        assert tx.instance == second
    assert (first.step_count, second.step_count) == (1, 2)
    stored = store.get_instance("wf-1")
    assert stored.step_count == 2 and stored.custom_status == '"v2"' and stored.completed_at is None
    assert stored.updated_at >= created.updated_at
    with store.step("wf-1") as tx:
        tx.update_instance(status="COMPLETED", output='"ok"')
    done = store.get_instance("wf-1")
    assert done.completed_at is not None and done.completed_at.tzinfo == timezone.utc
    assert done.output == '"ok"' and done.step_count == 3


@pytest.mark.parametrize("field", ["instance_id", "step_count", "nonsense"])
def test_update_instance_rejects_columns_it_must_not_set(store: Store, field: str) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        with pytest.raises(TypeError, match=field):
            tx.update_instance(**{field: 1})


def test_datetimes_are_aware_utc_both_ways(store: Store) -> None:
    naive = datetime(2031, 5, 6, 7, 8, 9, 123456)
    cet = datetime(2031, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    b.create(store, "wf-1", start_at=naive)
    with store.step("wf-1") as tx:
        tx.update_instance(completed_at=cet)
    inst = store.get_instance("wf-1")
    expected = naive.replace(tzinfo=timezone.utc)
    assert inst.start_at == expected and inst.start_at.tzinfo == timezone.utc
    assert inst.completed_at == expected and inst.completed_at.utcoffset() == timedelta(0)


def test_start_new_generation(store: Store) -> None:
    b.create(store, "wf-1", input="gen0")
    b.fill(store, "wf-1")
    with store.step("wf-1") as tx:
        tx.add_outbox([NewOutbox("app", "orchestrate", "{}")])
        inst = tx.start_new_generation("gen1")
        assert (inst.generation, inst.input) == (1, "gen1") and tx.instance == inst
        assert tx.history() == []
        tx.append_history([b.event(0, "ExecutionStarted")])  # sequence 0 again: new generation
        tx.add_timers([NewTimer(0, b.later(5))])  # timer id 0 again
    assert [(e.generation, e.sequence) for e in store.history("wf-1")] == [(1, 0)]
    assert store.history("wf-1", generation=0) == []
    counts = b.row_counts(store, "wf-1")
    assert counts["inbox"] == 2  # messages carry over to the new generation
    assert counts["timers"] == 1
    kinds = sorted(o.kind for o in b.due_outbox(store, b.later(10)))
    assert kinds == ["orchestrate", "orchestrate"]  # the old activity request is gone


def test_create_child_and_reply_to_parent_inside_a_step(store: Store) -> None:
    b.create(store, "parent")
    with store.step("parent") as tx:
        ids = tx.create_instance(
            NewInstance("child", "billing", "charge", parent_instance_id="parent",
                        parent_app_id="app", parent_task_id=3),
            b.started(), [b.orchestrate("child", "billing")],
        )
        assert len(ids) == 1
        # A second start of the same child is refused, and the step can go on (no failed
        # statement poisons the transaction on PostgreSQL).
        with pytest.raises(errors.InstanceAlreadyExists):
            tx.create_instance(NewInstance("child", "billing", "charge"), b.started())
        with pytest.raises(errors.InstanceNotFound):
            tx.enqueue("ghost", [b.message("x")])
        with pytest.raises(errors.InstanceAlreadyExists):
            tx.create_instance(NewInstance("parent", "app", "wf"), b.started())
        tx.update_instance(status="RUNNING")
    with store.step("child") as tx:
        assert tx.enqueue("parent", [b.message("child-done")]) == 1
        assert tx.enqueue("parent", [b.message("child-done")]) == 0
        tx.update_instance(status="COMPLETED")
    assert store.get_instance("parent").status == "RUNNING"
    assert store.get_instance("child").parent_task_id == 3
    assert b.row_counts(store, "parent")["inbox"] == 2
