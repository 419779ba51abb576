"""One decision of which broker URLs are Redis, for every Redis-only part."""

from __future__ import annotations

import pytest

from brokers import liveness, urls
from brokers.urls import redis_url


@pytest.mark.parametrize(("broker", "expected"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("rediss://:secret@cache.example:6380/1", "rediss://:secret@cache.example:6380/1"),
    ("redis+socket:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
    ("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
    ("memory://localhost/", None),
    ("amqp://guest@localhost//", None),
])
def test_redis_url(broker: str, expected: str | None) -> None:
    assert redis_url(broker) == expected
    assert liveness.is_redis(broker) is (expected is not None)  # liveness follows the same rule


@pytest.mark.parametrize(("broker", "memory", "own_transport"), [
    ("memory://localhost/", True, False),
    ("redis://127.0.0.1:6379/0", False, True),
    ("rediss://cache.example:6380/1", False, False),  # kombu's transport: it turns TLS on by the scheme
    ("redis+socket:///run/redis/redis.sock", False, False),
])
def test_memory_and_transport(broker: str, memory: bool, own_transport: bool) -> None:
    assert urls.is_memory(broker) is memory
    assert urls.uses_own_transport(broker) is own_transport
