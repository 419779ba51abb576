"""Concurrent callers: timers fire once, steps serialise, creators and migrators race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from persistence import errors
from persistence.records import NewInstance, NewTimer
from persistence.store import Store
from tests.fixtures.postgres import PostgresServer, free_port
from tests.integration.persistence import builders as b
from tests.integration.persistence.test_persistence_reconcile import fired


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads that start at the same moment; re-raise any error."""
    barrier = threading.Barrier(n)

    def go(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_two_tickers_never_fire_the_same_timer(store_url: str) -> None:
    stores = [Store(store_url), Store(store_url)]  # separate engines: separate connections
    try:
        due = b.ago(5)
        for i in range(20):
            b.create(stores[0], f"wf-{i}")
            with stores[0].step(f"wf-{i}") as tx:
                tx.add_timers([NewTimer(t, due) for t in range(10)])

        def tick(i: int) -> list[tuple[str, int]]:
            got: list[tuple[str, int]] = []
            while batch := stores[i].fire_due_timers(b.now(), fired, limit=7):
                got.extend((t.instance_id, t.timer_id) for t in batch)
            return got

        first, second = run_together(2, tick)
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted((f"wf-{i}", t) for i in range(20) for t in range(10))
        assert b.row_counts(stores[0], "wf-3") == {
            "history_events": 0, "inbox": 11, "timers": 0, "outbox": 1, "instances": 1,
        }
    finally:
        for s in stores:
            s.close()


def test_steps_on_one_instance_serialise(store_url: str) -> None:
    """The second step blocks until the first commits, then sees its writes."""
    stores = [Store(store_url), Store(store_url)]
    try:
        b.create(stores[0], "wf-1")
        first_in = threading.Event()
        log: list[tuple[str, float]] = []

        def first() -> None:
            with stores[0].step("wf-1") as tx:
                first_in.set()
                tx.append_history([b.event(0)])
                time.sleep(0.4)
                tx.update_instance(status="RUNNING")
                log.append(("first commits", time.monotonic()))

        def second() -> int:
            assert first_in.wait(5)
            with stores[1].step("wf-1") as tx:
                log.append(("second in", time.monotonic()))
                assert tx.instance.status == "RUNNING" and tx.instance.step_count == 1
                history = tx.history()
                tx.append_history([b.event(len(history))])
                return len(history)

        with ThreadPoolExecutor(2) as pool:
            f1, f2 = pool.submit(first), pool.submit(second)
            f1.result(10)
            assert f2.result(10) == 1
        assert [name for name, _ in log] == ["first commits", "second in"]
        assert [e.sequence for e in stores[0].history("wf-1")] == [0, 1]
    finally:
        for s in stores:
            s.close()


def test_reads_do_not_wait_for_a_step(store_url: str) -> None:
    """SQLite: reads begin DEFERRED (WAL readers never wait); only writes take the lock."""
    with Store(store_url) as store:
        b.create(store, "wf-1")
        with store.step("wf-1") as tx:
            tx.update_instance(status="RUNNING")
            with ThreadPoolExecutor(1) as pool:
                read = pool.submit(store.get_instance, "wf-1").result(5)
                listed = pool.submit(store.list_instances).result(5)
            assert read.status == "PENDING" and len(listed) == 1  # not committed yet


@pytest.mark.integration
def test_a_delivery_does_not_wait_for_a_step_on_postgres(postgres_db_url: str) -> None:
    """FOR NO KEY UPDATE: inserting an inbox row for a locked instance is not blocked."""
    with Store(postgres_db_url) as store:
        b.create(store, "wf-1")
        with store.step("wf-1") as tx:
            tx.update_instance(status="RUNNING")
            started = time.monotonic()
            with ThreadPoolExecutor(1) as pool:
                assert pool.submit(store.enqueue, "wf-1", [b.message("m")]).result(5) == 1
            assert time.monotonic() - started < 2


def test_racing_creators_one_wins(store_url: str) -> None:
    stores = [Store(store_url) for _ in range(4)]
    try:
        def create(i: int) -> str:
            try:
                stores[i].create_instance(NewInstance("wf-1", "app", "wf", input=str(i)), b.started())
                return "created"
            except errors.InstanceAlreadyExists:
                return "exists"

        assert sorted(run_together(4, create)) == ["created", "exists", "exists", "exists"]
        assert b.row_counts(stores[0], "wf-1")["inbox"] == 1
    finally:
        for s in stores:
            s.close()


def _empty_url(request: pytest.FixtureRequest, tmp_path: Any, dialect: str) -> str:
    if dialect == "postgresql":
        return request.getfixturevalue("postgres_empty_db_url")
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_concurrent_migrate_is_safe(request: pytest.FixtureRequest, tmp_path: Any, dialect: str) -> None:
    url = _empty_url(request, tmp_path, dialect)
    stores = [Store(url) for _ in range(4)]
    try:
        run_together(4, lambda i: stores[i].migrate())
        stores[0].migrate()
        b.create(stores[1], "wf-1")
        assert stores[2].get_instance("wf-1") is not None
    finally:
        for s in stores:
            s.close()


@pytest.mark.integration
def test_unreachable_postgres_is_store_unavailable() -> None:
    store = Store(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    with pytest.raises(errors.StoreUnavailable) as info:
        store.get_instance("wf-1")
    assert "127.0.0.1" in str(info.value) and "retry" in str(info.value)
    with pytest.raises(errors.StoreUnavailable):
        with store.step("wf-1"):
            pass


@pytest.mark.integration
def test_a_killed_backend_costs_one_error_then_recovers(
    postgres_server: PostgresServer, postgres_db_url: str
) -> None:
    with Store(postgres_db_url) as store:
        b.create(store, "wf-1")
        dbname = postgres_db_url.rsplit("/", 1)[1]
        with pytest.raises(errors.StoreUnavailable):
            with store.step("wf-1") as tx:
                assert postgres_server.terminate_backends(dbname) >= 1
                tx.update_instance(status="RUNNING")
        assert store.get_instance("wf-1").status == "PENDING"  # pre-ping: a fresh connection
