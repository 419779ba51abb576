"""kombu's Redis transport, with one fix and one saving.

The saving: kombu builds a new `redis.Redis` object around the channel's connection pool for
every publish and every acknowledgement (`Channel.conn_or_acquire`); with redis-py 8 that
object costs about 0.1 ms of CPU to build, a sizeable share of a no-op step. A client over a
pool is safe to share between threads (each command takes a connection from the pool), so the
channel keeps one per pool and builds a new one only when the pool is replaced.

The fix: a closed connection is a connection error.

When Redis goes away while a worker holds unacknowledged messages (an orchestrator in the
middle of a step, say), Celery closes the broker connection and kombu's channel tries to put
those messages back (`restore_unacked`) or to ack them through a connection whose client is
already gone. kombu 5.x then fails with ``AttributeError: 'NoneType' object has no attribute
'hostname'``; that is not one of the transport's connection errors, so Celery calls it an
"Unrecoverable error" and the worker process exits (with status 0) instead of reconnecting.
Found by the reliability suite (tests/integration/reliability, C6/C7: Redis restarted under load).

Here the same situation raises `redis.exceptions.ConnectionError`, which Celery and kombu already
handle: the worker reconnects, and the messages it held come back after the visibility timeout
(or, if Redis lost them, from the database's reconcile tick).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_exceptions

#: For Celery's `broker_transport` setting.
TRANSPORT = "brokers.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise redis_exceptions.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own client: kombu manages its connection itself
            return super()._create_client(asynchronous=True)
        cached = getattr(self, "_shared_client", None)
        if cached is not None and cached.connection_pool is self._pool:
            return cached
        client = super()._create_client(asynchronous=False)
        self._shared_client = client
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
