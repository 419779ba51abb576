"""brokers.liveness on a real redis-server: held calls renewed and released by a worker
process, stale ones claimed once, and the broker's epoch."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from celery import Celery
from celery.worker import state

from brokers import liveness, wire
from workers.tasks import held_call

pytestmark = pytest.mark.integration


class FakeRequest:
    """What the renewal reads from a reserved Celery request."""

    def __init__(self, app: Celery, name: str, args: tuple[Any, ...]) -> None:
        self.app, self.name, self.args = app, name, args


def _call(instance_id: str, task_id: int) -> dict[str, Any]:
    return wire.ActivityRequest(instance_id=instance_id, app_id="orders", target_app_id="orders", pool=None,
                                generation=0, run=None, task_id=task_id, name="charge", input=None,
                                execution_id=f"{instance_id}:{task_id}").to_wire()


@pytest.fixture
def reserved() -> Iterator[list[FakeRequest]]:
    held: list[FakeRequest] = []
    yield held
    for req in held:
        state.reserved_requests.discard(req)


def test_a_process_renews_what_it_holds_and_releases_what_it_no_longer_holds(redis_url: str, reserved) -> None:
    app = Celery("t", broker=redis_url, set_as_current=False)
    calls = liveness.HeldCalls(app, redis_url)
    calls.add(held_call)
    watch = liveness.BrokerWatch(redis_url)
    other_app = Celery("other", broker=redis_url, set_as_current=False)
    reserved += [FakeRequest(app, "ledgerflow.activity.charge", (_call("i-1", 0),)),
                 FakeRequest(app, "ledgerflow.activity.ship", (_call("i-2", 3),)),
                 FakeRequest(app, "ledgerflow.orchestrate", ("i-3",)),  # not an activity call
                 FakeRequest(other_app, "ledgerflow.activity.charge", (_call("i-4", 0),))]  # another app's worker
    for req in reserved:
        state.reserved_requests.add(req)
    calls.renew()
    assert watch.held("orders") == {("i-1", "task:0:0"), ("i-2", "task:0:3")}
    assert watch.claim_stale("orders") == []  # renewed just now
    state.reserved_requests.discard(reserved[1])  # acknowledged: released at the next renewal
    calls.renew()
    assert watch.held("orders") == {("i-1", "task:0:0")}
    at_once = liveness.BrokerWatch(redis_url, stale_seconds=0)  # as if the holder had died
    [stale] = at_once.claim_stale("orders")
    assert (stale.app_id, stale.instance_id, stale.key, stale.holder) == ("orders", "i-1", "task:0:0", calls.holder)
    assert at_once.claim_stale("orders") == []  # claimed once
    assert watch.held("orders") == set()


def test_a_copy_of_a_call_another_live_process_holds_does_not_begin(redis_url: str, reserved,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = (Celery(name, broker=redis_url, set_as_current=False) for name in ("w1", "w2"))
    holders = [liveness.HeldCalls(app, redis_url) for app in (first, second)]
    watch = liveness.BrokerWatch(redis_url)
    call = held_call("ledgerflow.activity.charge", (_call("i-1", 0),))
    assert call is not None
    assert holders[0].begin(call)  # marked before any renewal: a worker killed now leaves a mark
    assert watch.held("orders") == {("i-1", "task:0:0")}
    assert not holders[1].begin(call)  # a copy elsewhere
    assert holders[0].begin(call)  # the same pool process may begin again (a redelivery to it)
    with monkeypatch.context() as patch:
        patch.setattr(liveness.os, "getpid", lambda: 1)  # another (live) pool process of the same worker
        assert not holders[0].begin(call)
    holders[0].end(call)
    assert watch.held("orders") == set()
    assert holders[1].begin(call)  # the first one finished: nobody holds it
    reserved.append(FakeRequest(second, "ledgerflow.activity.charge", (_call("i-1", 0),)))
    state.reserved_requests.add(reserved[-1])
    holders[1].add(held_call)
    holders[1].renew()  # a renewal keeps the holder
    assert not holders[0].begin(call)
    other = held_call("ledgerflow.activity.charge", (_call("i-2", 0),))
    assert other is not None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with monkeypatch.context() as patch:
        patch.setattr(liveness.os, "getpid", lambda: dead.pid)  # a pool process that then died in the call
        assert holders[0].begin(other)
    assert holders[0].begin(other)  # its replacement (Celery requeued the call) takes it over
    assert not holders[1].begin(other)


def test_a_batch_holds_its_calls_in_one_round_trip_and_leaves_a_copy_held_elsewhere(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mine, other = (liveness.HeldCalls(Celery(name, broker=redis_url, set_as_current=False), redis_url)
                   for name in ("o1", "o2"))
    watch = liveness.BrokerWatch(redis_url)
    calls = [held_call("ledgerflow.activity.charge", (_call(f"b-{i}", i),)) for i in range(3)]
    assert all(calls)
    assert other.begin(calls[2])  # a copy another live process holds
    round_trips: list[str] = []
    pipeline, begin = mine._redis.pipeline, mine.begin
    monkeypatch.setattr(mine._redis, "pipeline", lambda **kw: round_trips.append("pipeline") or pipeline(**kw))
    monkeypatch.setattr(mine, "begin", lambda call: round_trips.append("begin") or begin(call))
    with liveness.holding_all(mine, [*calls, None]) as held:
        assert held == calls[:2]  # the one held elsewhere is left to its holder; None is no call
        assert watch.held("orders") == {("b-0", "task:0:0"), ("b-1", "task:0:1"), ("b-2", "task:0:2")}
    assert watch.held("orders") == {("b-2", "task:0:2")}  # released its own, not the other's
    assert round_trips == ["pipeline", "begin", "pipeline"]  # one each way, and the copy asked again alone
    with liveness.holding_all(None, calls) as held:  # no Redis: everything counts as held
        assert held == calls


def test_the_epoch_reports_a_broker_that_lost_its_data_once(redis_url: str, redis_server: Any) -> None:
    later = liveness.BrokerWatch(redis_url, grace_seconds=3600)
    assert later.check_epoch("orders", take_due=False) == (True, None)  # an orchestrator starting
    assert later.check_epoch("orders") == (False, None)  # its recovery comes later
    redis_server.command("FLUSHALL")
    at_once = liveness.BrokerWatch(redis_url, grace_seconds=0)
    before = time.time()
    lost, found = at_once.check_epoch("orders")  # due at once, to one caller
    assert lost and found is not None and before <= found <= time.time()
    assert at_once.check_epoch("orders") == (False, None)
    assert at_once.check_epoch("billing")[0]  # each app has its own


@pytest.fixture
def machine() -> Iterator[Any]:
    """The D3 model's real service and store (SQLite) with a broker list: one workflow whose
    first activity call was sent (and sits in no queue the test runs)."""
    from tests.chaos import statemachine

    model = statemachine.make_machine({})()
    model.first_starts(n=1, again=False, also=False)
    model.consume_wake()
    assert len(model.broker.activities) == 1
    yield model
    model.teardown()


def _member(app: str, request: wire.ActivityRequest, holder: str) -> str:
    return liveness.Held(app, request.instance_id, request.result_message_id, holder).member()


def test_the_tick_re_sends_a_call_whose_holder_died_and_nothing_else(machine, redis_url: str, redis_server: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from orchestrator import ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=3600)  # no broker-loss recovery in this test
    app, [request] = machine.service.app_id, machine.broker.activities
    for _ in range(3):  # merely queued: never re-sent
        ticker.tick(machine.service, watch=watch)
    assert len(machine.broker.activities) == 1
    redis_server.command("ZADD", liveness.live_key(app), 0, _member(app, request, "w1:42:ab"))  # renewed long ago
    with caplog.at_level("WARNING", logger="ledgerflow.recovery"):
        ticker.tick(machine.service, watch=watch)
        ticker.tick(machine.service, watch=watch)  # claimed once
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 2
    [line] = [r.getMessage() for r in caplog.records if "re-sent activity" in r.getMessage()]
    assert request.instance_id in line and "w1:42:ab stopped renewing" in line


def test_after_a_broker_data_loss_the_tick_re_sends_calls_no_one_holds(machine, redis_url: str,
                                                                      redis_server: Any) -> None:
    from orchestrator import ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=0)
    app, [request] = machine.service.app_id, machine.broker.activities
    ticker.tick(machine.service, watch=watch)  # the first look finds no epoch: a (harmless) recovery
    assert len(machine.broker.activities) == 2
    ticker.tick(machine.service, watch=watch)
    assert len(machine.broker.activities) == 2  # the epoch stays: nothing more
    redis_server.command("FLUSHALL")
    redis_server.command("ZADD", liveness.live_key(app), "+inf", _member(app, request, "w1:42:ab"))  # renewed
    ticker.tick(machine.service, watch=watch)
    assert len(machine.broker.activities) == 2  # a live worker holds it: not re-sent
    machine.raise_go(slot=0, value=1)  # an inbox with work, whose wake-up the broker then loses
    woken = len(machine.broker.wakes)
    redis_server.command("FLUSHALL")
    ticker.tick(machine.service, watch=watch)
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 3
    assert machine.broker.wakes[woken:] == [request.instance_id]


def _kombu_message(request: wire.ActivityRequest, tag: str) -> dict[str, Any]:
    """A Celery activity message as kombu stores it in Redis."""
    import base64
    import json

    body = base64.b64encode(json.dumps([[request.to_wire()], {}, {}]).encode()).decode()
    return {"body": body, "headers": {"task": f"ledgerflow.activity.{request.name}"},
            "properties": {"body_encoding": "base64", "delivery_tag": tag}, "content-type": "application/json"}


def _unacked(redis_server: Any, tag: str, request: wire.ActivityRequest, received_at: float) -> None:
    """What kombu writes when a consumer receives a message (QoS.append)."""
    import json

    redis_server.command("HSET", liveness.UNACKED, tag, json.dumps([_kombu_message(request, tag), "", "q"]))
    redis_server.command("ZADD", liveness.UNACKED_INDEX, received_at, tag)


def test_a_call_received_by_a_worker_that_died_before_marking_it_is_taken_over(machine, redis_url: str,
                                                                               redis_server: Any) -> None:
    from orchestrator import ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=3600)
    app, [request] = machine.service.app_id, machine.broker.activities
    _unacked(redis_server, "tag-1", request, time.time())  # just received: its worker marks it any moment
    ticker.tick(machine.service, watch=watch)
    assert len(machine.broker.activities) == 1
    redis_server.command("ZADD", liveness.UNACKED_INDEX, 0, "tag-1")  # received long ago, never marked
    redis_server.command("ZADD", liveness.live_key(app), "+inf", _member(app, request, "w1:42:ab"))
    ticker.tick(machine.service, watch=watch)
    assert len(machine.broker.activities) == 1  # held by a live worker: a long activity, not an orphan
    redis_server.command("DEL", liveness.live_key(app))
    ticker.tick(machine.service, watch=watch)
    ticker.tick(machine.service, watch=watch)  # taken over once
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 2
    assert int(redis_server.command("HLEN", liveness.UNACKED)) == 0  # Redis will not restore it later


def test_after_a_death_calls_in_no_queue_and_held_by_no_one_are_re_sent(machine, redis_url: str,
                                                                        redis_server: Any) -> None:
    """Redis pops a message before its consumer records it as received: a worker killed in
    between loses it. Once a death is found, such calls (published a while ago, in no queue,
    received and held by no one, not finished) are sent again; the others are left alone."""
    import json
    from datetime import timedelta

    from brokers.queues import activity_queue
    from orchestrator import ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=3600)
    app, [request] = machine.service.app_id, machine.broker.activities
    machine.offset = timedelta(seconds=10)  # the call was published a while ago
    queue = activity_queue(request.target_app_id, request.pool)
    redis_server.command("LPUSH", queue, json.dumps(_kombu_message(request, "tag-1")))  # still queued
    redis_server.command("ZADD", liveness.live_key(app), 0, _member(app, replace(request, instance_id="other"), "w1"))
    ticker.tick(machine.service, watch=watch)  # a death found: the sweep finds the call queued
    assert len(machine.broker.activities) == 1
    redis_server.command("DEL", queue)
    ticker.tick(machine.service, watch=watch)  # no death found: no sweep
    assert len(machine.broker.activities) == 1
    redis_server.command("ZADD", liveness.live_key(app), 0, _member(app, replace(request, instance_id="other"), "w1"))
    ticker.tick(machine.service, watch=watch)
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 2


def test_the_audit_re_sends_a_call_found_nowhere_at_two_audits(machine, redis_url: str, redis_server: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """The net under the other checks: with no death found, a call that is in no queue,
    received and held by no one at two audits in a row is sent again, once; a queued call
    never is, however often the audit runs."""
    import json
    from datetime import timedelta

    from brokers.queues import activity_queue
    from orchestrator import recovery, ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=3600)
    app, [request] = machine.service.app_id, machine.broker.activities
    audit_key = f"ledgerflow:audit:{app}"
    machine.offset = timedelta(seconds=recovery.AUDIT_SECONDS + 2)  # published long enough ago
    queue = activity_queue(request.target_app_id, request.pool)
    redis_server.command("LPUSH", queue, json.dumps(_kombu_message(request, "tag-1")))
    for _ in range(3):  # merely queued
        ticker.tick(machine.service, watch=watch)
        redis_server.command("DEL", audit_key)  # as if AUDIT_SECONDS had passed
    assert len(machine.broker.activities) == 1
    redis_server.command("DEL", queue)  # lost, with no death to tell
    ticker.tick(machine.service, watch=watch)  # nowhere once: a suspect
    ticker.tick(machine.service, watch=watch)  # the next audit is not due yet
    assert len(machine.broker.activities) == 1
    redis_server.command("DEL", audit_key)
    with caplog.at_level("WARNING", logger="ledgerflow.recovery"):
        ticker.tick(machine.service, watch=watch)  # nowhere again: sent again
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 2
    [line] = [r.getMessage() for r in caplog.records if "re-sent activity" in r.getMessage()]
    assert request.instance_id in line and "at two audits" in line


def test_one_tick_of_an_app_recovers_at_a_time(machine, redis_url: str, redis_server: Any) -> None:
    """Ticks overlap when they run long; two recovering at once re-sent the same lost call
    twice. While one holds the app's recovery, another does nothing."""
    from orchestrator import recovery, ticker

    watch = liveness.BrokerWatch(redis_url, grace_seconds=3600)
    app, [request] = machine.service.app_id, machine.broker.activities
    ticker.tick(machine.service, watch=watch)  # sets the epoch
    redis_server.command("ZADD", liveness.live_key(app), 0, _member(app, request, "w1:42:ab"))  # its holder died
    with watch.exclusive(f"recover:{app}", recovery.RECOVERY_LOCK_SECONDS) as mine:
        assert mine
        ticker.tick(machine.service, watch=watch)  # another tick, meanwhile
        assert len(machine.broker.activities) == 1
    ticker.tick(machine.service, watch=watch)
    assert [r.execution_id for r in machine.broker.activities] == [request.execution_id] * 2
