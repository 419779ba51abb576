"""kombu's Redis transport, with one fix: a closed connection is a connection error.

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


class Transport(kombu_redis.Transport):
    Channel = Channel
