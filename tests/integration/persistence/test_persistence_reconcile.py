"""Timers, pending inboxes and the outbox: what the tick and the reconciler use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from persistence.records import NewInboxMessage, NewOutbox, NewTimer, TimerRecord
from persistence.store import Store
from tests.integration.persistence import builders as b


def fired(timer: TimerRecord) -> NewInboxMessage:
    return NewInboxMessage(
        f"timer:{timer.generation}:{timer.timer_id}", "TimerFired",
        f'{{"timer_id": {timer.timer_id}}}',
    )


def add_timers(store: Store, instance_id: str, *fire_ats: object) -> None:
    with store.step(instance_id) as tx:
        tx.add_timers([NewTimer(i, at) for i, at in enumerate(fire_ats)])  # type: ignore[arg-type]


def test_fire_due_timers_moves_due_rows_to_the_inbox(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        tx.delete_inbox([m.id for m in tx.visible_inbox(b.now())])
    t0 = b.now()
    add_timers(store, "wf-1", t0 - timedelta(seconds=2), t0 - timedelta(seconds=1), t0 + timedelta(hours=1))
    result = store.fire_due_timers(t0, fired)
    assert [(t.instance_id, t.app_id, t.generation, t.timer_id) for t in result] == [
        ("wf-1", "app", 0, 0), ("wf-1", "app", 0, 1),
    ]
    assert result[0].fire_at == t0 - timedelta(seconds=2)
    assert store.fire_due_timers(t0, fired) == []  # fired once
    with store.step("wf-1") as tx:
        inbox = tx.visible_inbox(t0)
    assert [(m.message_id, m.type, m.visible_at) for m in inbox] == [
        ("timer:0:0", "TimerFired", t0), ("timer:0:1", "TimerFired", t0),
    ]
    assert b.row_counts(store, "wf-1")["timers"] == 1
    assert [t.timer_id for t in store.fire_due_timers(t0 + timedelta(hours=2), fired)] == [2]


def test_fire_due_timers_filters_by_app_and_limit(store: Store) -> None:
    b.create(store, "wf-a", app_id="a")
    b.create(store, "wf-b", app_id="b")
    t0 = b.ago(10)
    add_timers(store, "wf-a", t0, t0, t0)
    add_timers(store, "wf-b", t0)
    assert [t.instance_id for t in store.fire_due_timers(b.now(), fired, app_id="b")] == ["wf-b"]
    assert len(store.fire_due_timers(b.now(), fired, app_id="a", limit=2)) == 2
    assert len(store.fire_due_timers(b.now(), fired, limit=10)) == 1


def test_fire_due_timers_rolls_back_when_make_message_fails(store: Store) -> None:
    b.create(store, "wf-1")
    add_timers(store, "wf-1", b.ago(1))

    def broken(timer: TimerRecord) -> NewInboxMessage:
        raise ValueError("cannot encode")

    with pytest.raises(ValueError):
        store.fire_due_timers(b.now(), broken)
    assert b.row_counts(store, "wf-1")["timers"] == 1


def test_pending_instances(store: Store) -> None:
    for iid, app in [("wf-1", "a"), ("wf-2", "a"), ("wf-3", "b"), ("wf-4", "a")]:
        b.create(store, iid, app_id=app)
    with store.step("wf-2") as tx:  # consumed its inbox
        tx.delete_inbox([m.id for m in tx.visible_inbox(b.now())])
    with store.step("wf-4") as tx:
        tx.delete_inbox([m.id for m in tx.visible_inbox(b.now())])
    store.enqueue("wf-4", [b.message("later", visible_at=b.later(30))])
    assert store.pending_instances(b.now()) == [("wf-1", "a"), ("wf-3", "b")]
    assert store.pending_instances(b.now(), app_id="a") == [("wf-1", "a")]
    assert store.pending_instances(b.now(), limit=1) == [("wf-1", "a")]
    assert store.pending_instances(b.ago(60)) == []  # now - grace skips fresh messages
    assert ("wf-4", "a") in store.pending_instances(b.later(31))


def test_due_outbox_waits_for_the_grace_period(store: Store) -> None:
    [oid] = b.create(store, "wf-1")
    assert b.due_outbox(store, b.now()) == []  # the writer is still expected to publish it
    assert [o.id for o in b.due_outbox(store, b.now(), unsent_grace_seconds=0)] == [oid]
    assert [o.id for o in b.due_outbox(store, b.later(6))] == [oid]


def test_claimed_outbox_rows_are_offered_to_one_reconciler_until_the_hold_ends(store: Store) -> None:
    oids = [b.create(store, f"wf-{i}")[0] for i in range(4)]
    now = b.later(10)
    first = store.claim_due_outbox(now, hold_until=now + timedelta(seconds=30))
    assert sorted(o.id for o in first) == sorted(oids)
    assert store.claim_due_outbox(now, hold_until=now + timedelta(seconds=30)) == []  # a second tick
    assert b.due_outbox(store, now + timedelta(seconds=29)) == []
    again = store.claim_due_outbox(now + timedelta(seconds=31), hold_until=now + timedelta(seconds=60))
    assert sorted(o.id for o in again) == sorted(oids)  # never published: offered again after the hold


def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    oids = {b.create(store, f"wf-{i}")[0] for i in range(40)}
    now = b.later(10)
    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(lambda _: [o.id for o in store.claim_due_outbox(
            now, hold_until=now + timedelta(seconds=30), limit=15)], range(4)))
    claimed = [oid for claim in claims for oid in claim]
    assert len(claimed) == len(set(claimed)), claims  # no row re-sent by two reconcilers
    assert set(claimed) == oids


def test_mark_orchestrate_sent_deletes_the_row(store: Store) -> None:
    [oid] = b.create(store, "wf-1")
    store.mark_outbox_sent([oid], b.now())
    assert b.row_counts(store, "wf-1")["outbox"] == 0


def test_activity_rows_stay_leased_until_consumed(store: Store) -> None:
    b.create(store, "wf-1")
    with store.step("wf-1") as tx:
        [act, forever] = tx.add_outbox([
            NewOutbox("app", "activity", "{}", dedup_key="task:0"),
            NewOutbox("app", "activity", "{}", dedup_key="task:1"),
        ])
    t0 = b.now()
    store.mark_outbox_sent([act], t0, lease_until=t0 + timedelta(seconds=30))
    store.mark_outbox_sent([forever], t0)
    later = t0 + timedelta(seconds=10)
    assert act not in [o.id for o in b.due_outbox(store, later)]
    [row] = [o for o in b.due_outbox(store, t0 + timedelta(seconds=31)) if o.id == act]
    assert (row.sent_at, row.lease_until, row.attempts) == (t0, t0 + timedelta(seconds=30), 1)
    store.mark_outbox_sent([act], t0 + timedelta(seconds=31), lease_until=t0 + timedelta(seconds=61))
    assert act not in [o.id for o in b.due_outbox(store, t0 + timedelta(seconds=40))]
    [row] = [o for o in b.due_outbox(store, t0 + timedelta(seconds=62)) if o.id == act]
    assert row.attempts == 2
    assert forever not in [o.id for o in b.due_outbox(store, t0 + timedelta(days=365))]
    with store.step("wf-1") as tx:  # the result arrived
        assert tx.delete_outbox(["task:0", "task:1"]) == 2
    assert all(o.instance_id != "wf-1" or o.kind == "orchestrate"
               for o in b.due_outbox(store, b.later(3600)))


def test_mark_outbox_sent_with_no_ids_is_a_no_op(store: Store) -> None:
    store.mark_outbox_sent([], b.now())


def test_sent_activity_calls_are_the_app_s_activity_rows_awaiting_a_result(store: Store) -> None:
    """What liveness recovery re-sends: sent activity rows of the app's own instances, all of
    them or those with the given (instance, key)."""
    b.create(store, "wf-1")
    b.create(store, "wf-2")
    b.create(store, "wf-other", app_id="other")
    ids = {}
    for iid in ("wf-1", "wf-2", "wf-other"):
        with store.step(iid) as tx:
            ids[iid] = tx.add_outbox([NewOutbox("worker-app", "activity", "{}", dedup_key="task:0:0"),
                                      NewOutbox("worker-app", "activity", "{}", dedup_key="task:0:1")])
    t0 = b.now()
    store.mark_outbox_sent([*ids["wf-1"], ids["wf-2"][0], *ids["wf-other"]], t0, lease_until=t0)
    assert [o.id for o in store.sent_activity_calls(b.APP)] == [*ids["wf-1"], ids["wf-2"][0]]  # never sent: not yet
    chosen = store.sent_activity_calls(b.APP, [("wf-1", "task:0:1"), ("wf-2", "task:0:0"), ("wf-other", "task:0:0")])
    assert [(o.instance_id, o.dedup_key) for o in chosen] == [("wf-1", "task:0:1"), ("wf-2", "task:0:0")]
    assert store.sent_activity_calls(b.APP, []) == []
    assert store.sent_activity_calls(b.APP, sent_before=t0) == []  # published after a loss was found
    assert len(store.sent_activity_calls(b.APP, sent_before=t0 + timedelta(seconds=1))) == 3
