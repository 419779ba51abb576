"""The raw-Celery baseline: the same no-op work as plain tasks, chains and chords.

The app is built by the same factory as Ledgerflow's (`brokers.app.create_app`: late acks,
prefetch 1, JSON), on the same broker, so the ratio compares Ledgerflow with Celery as
Ledgerflow configures it. `celery -A bench.baseline worker` finds `app` below, built from
BENCH_BROKER_URL / BENCH_BACKEND_URL; completion is recorded by the last task of a chain or
the chord callback as `RPUSH <key> "<token> <unix time>"` on the broker's Redis (or, on the
memory transport, in a process-local list).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from celery import Celery, chain, chord

from brokers import app as broker_app

QUEUE_A = "baseline.a"
QUEUE_B = "baseline.b"
QUEUE_IDLE = "baseline.unconsumed"  # P6: apply_async into a queue nobody reads

#: Completion marks on the memory transport (everything runs in one process there).
LOCAL_MARKS: dict[str, list[str]] = {}
_local_lock = threading.Lock()


def make_app(broker_url: str, backend_url: str | None = None) -> Celery:
    overrides: dict[str, Any] = {}
    if backend_url:
        overrides["result_backend"] = backend_url
    app = broker_app.create_app(broker_url, "bench-baseline", main="bench-baseline", **overrides)
    app.conf.task_default_queue = QUEUE_A
    _register(app)
    return app


def _mark(app: Celery, key: str, token: str) -> None:
    entry = f"{token} {time.time()}"
    url = app.conf.broker_url
    if url.startswith("memory://"):
        with _local_lock:
            LOCAL_MARKS.setdefault(key, []).append(entry)
        return
    client = _redis_client(url)
    client.rpush(key, entry)


_clients: dict[str, Any] = {}


def _redis_client(url: str) -> Any:
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url)
    return client


def _register(app: Celery) -> None:
    @app.task(name="bench.noop", shared=False, ignore_result=True)
    def noop(value: Any = None, done: str | None = None, token: str | None = None) -> Any:
        if done is not None:
            _mark(app, done, token or "")
        return value

    @app.task(name="bench.noop_r", shared=False, ignore_result=False)
    def noop_r(value: Any = None) -> Any:
        return value

    @app.task(name="bench.done", shared=False, ignore_result=True)
    def done(results: Any = None, key: str = "", token: str = "") -> None:
        _mark(app, key, token)


def chain_of(app: Celery, n: int, done_key: str, token: str) -> Any:
    """`n` no-op tasks, alternating two queues (an orchestrator hop and an activity hop);
    the last one marks completion."""
    noop = app.tasks["bench.noop"]
    sigs = [noop.si(i).set(queue=QUEUE_A if i % 2 == 0 else QUEUE_B) for i in range(n - 1)]
    sigs.append(noop.si(n - 1, done=done_key, token=token).set(queue=QUEUE_A if (n - 1) % 2 == 0 else QUEUE_B))
    return chain(*sigs)


def chord_of(app: Celery, n: int, done_key: str, token: str) -> Any:
    header = [app.tasks["bench.noop_r"].si(i).set(queue=QUEUE_A) for i in range(n)]
    return chord(header, app.tasks["bench.done"].s(key=done_key, token=token).set(queue=QUEUE_A))


def marks(app: Celery, key: str) -> list[tuple[str, float]]:
    """The completion marks recorded under `key`, as (token, unix time)."""
    if app.conf.broker_url.startswith("memory://"):
        with _local_lock:
            raw = list(LOCAL_MARKS.get(key, []))
    else:
        raw = [v.decode() for v in _redis_client(app.conf.broker_url).lrange(key, 0, -1)]
    out = []
    for entry in raw:
        token, _, stamp = entry.rpartition(" ")
        out.append((token, float(stamp)))
    return out


app = make_app(os.environ.get("BENCH_BROKER_URL", "memory://localhost/"), os.environ.get("BENCH_BACKEND_URL"))
