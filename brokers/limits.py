"""Per-name concurrency limits shared by every process of a deployment.

On Redis a limit is a sorted set of holders scored by lease expiry: acquiring drops expired
holders and adds one only while fewer than the limit remain, atomically in a Lua script; a
holder renews its lease while it runs, so a killed worker frees its slot when the lease
runs out instead of holding it forever. On the in-memory transport (the embedded default,
one process) a local counter does the same.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from brokers.urls import redis_url

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


class NameLimiter:
    """`try_acquire(kind, name, limit)` -> a token or None; `release(token)`."""

    def __init__(self, broker_url: str, lease_seconds: float = 30.0) -> None:
        self.lease = lease_seconds
        self._redis: Any = None
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        url = redis_url(broker_url)
        if url is not None:
            import redis

            self._redis = redis.Redis.from_url(url)
            self._acquire = self._redis.register_script(_ACQUIRE)

    def try_acquire(self, kind: str, name: str, limit: int) -> str | None:
        key = f"ledgerflow:limit:{kind}:{name}"
        holder = uuid.uuid4().hex
        if self._redis is None:
            with self._lock:
                if self._local.get(key, 0) >= limit:
                    return None
                self._local[key] = self._local.get(key, 0) + 1
            return f"{key}|{holder}"
        now = time.time()
        if self._acquire(keys=[key], args=[now, limit, now + self.lease, holder]):
            return f"{key}|{holder}"
        return None

    def renew(self, token: str) -> None:
        key, _, holder = token.partition("|")
        if self._redis is not None:
            self._redis.zadd(key, {holder: time.time() + self.lease}, xx=True)

    def release(self, token: str) -> None:
        key, _, holder = token.partition("|")
        if self._redis is None:
            with self._lock:
                self._local[key] = max(0, self._local.get(key, 0) - 1)
            return
        self._redis.zrem(key, holder)

    @contextmanager
    def held(self, token: str) -> Iterator[None]:
        """Renew the lease in the background while the holder runs; release at the end."""
        stop = threading.Event()

        def renew_loop() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    self.renew(token)
                except Exception:  # a broker blip: the next renewal tries again
                    pass

        renewer = threading.Thread(target=renew_loop, daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            self.release(token)
