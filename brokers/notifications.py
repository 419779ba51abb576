"""Redis pub/sub as a change-feed transport (`ledgerflow.change_channel` does the rest).

Used to wake waiters (`wait_for_workflow_completion`, ...) in other processes without
polling the database, when the broker is Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class RedisTransport:
    """Connect, send and receive on Redis pub/sub (short socket timeouts for publishing)."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis  # noqa: F401  (imported now, not on the first publish right after a commit)

        self.url = url

    def open_publisher(self) -> Any:
        return _client(self.url, socket_timeout=1.0)

    def send(self, publisher: Any, channel: str, message: str) -> None:
        publisher.publish(channel, message)

    def subscribe(self, channel: str) -> Any:
        pubsub = _client(self.url, socket_timeout=None).pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(channel)
        except Exception:
            pubsub.close()
            raise
        return pubsub

    def receive(self, subscription: Any, timeout: float) -> Iterator[str]:
        message = subscription.get_message(timeout=timeout)
        if message and message.get("type") == "message":
            data = message["data"]
            yield data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def close(self, connection: Any) -> None:
        connection.close()


def _client(url: str, *, socket_timeout: float | None) -> Any:
    import redis  # celery[redis] installs it; imported lazily so memory:// needs nothing

    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=socket_timeout,
                                health_check_interval=15)
