"""What the workers of a deployment remember about each activity call: how many of its
deliveries died, and the result it already sent.

A worker process that dies while running an activity (kill -9, the OOM killer, a crash in
native code) leaves its message unacknowledged; Celery requeues it (`task_reject_on_worker_lost`)
and the orchestrator re-sends it when its lease ends, so a call that kills every worker that
runs it would be retried forever. Each start increments a counter keyed by the call's stable
execution id, each normal finish deletes it: what the counter holds is the number of starts
that died. On Redis the counter is shared by every worker (it expires after a week); on the
in-memory transport (the embedded default, one process) it is a local dict.

The orchestrator re-sends a call when its lease ends without a result, so a call that waits
in a long queue has copies behind it. On Redis each finished call's result message is kept for
a while; a copy consumed later sends that result again instead of running the
activity again. Losing the memory (Redis restarted) only costs a re-run: activities stay
at-least-once, the orchestrator drops the second result.

Both fail open: when Redis cannot be reached the activity runs, uncounted and unremembered.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from brokers import wire
from brokers.urls import redis_url

log = logging.getLogger("ledgerflow.worker")

TTL_SECONDS = 7 * 24 * 3600
#: Results larger than this are not remembered (a copy runs the activity again).
MAX_REMEMBERED_BYTES = 256 * 1024


def result_key(key: str) -> str:
    """Where the result message of the call with this key (`ActivityRequest.delivery_key`) is
    remembered."""
    return f"ledgerflow:result:{key}"


class CallMemory:
    """Per activity call (keyed by its stable execution id and attempt), in two round trips:
    `begin(key)` -> (the result it already sent or None, its unfinished starts including this
    one; 0 when unknown); `end(key, message, ttl)` clears the count and remembers the result."""

    def __init__(self, broker_url: str) -> None:
        self._redis: Any = None
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        url = redis_url(broker_url)
        if url is not None:
            import redis

            self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def begin(self, key: str) -> tuple[wire.ResultMessage | None, int]:
        count_key, remembered = f"ledgerflow:deliveries:{key}", result_key(key)
        if self._redis is None:
            with self._lock:
                self._local[count_key] = self._local.get(count_key, 0) + 1
                return None, self._local[count_key]
        try:
            pipe = self._redis.pipeline()
            pipe.get(remembered)
            pipe.incr(count_key)
            pipe.expire(count_key, TTL_SECONDS)
            text, count, _ = pipe.execute()
            return (wire.ResultMessage.from_wire(json.loads(text)) if text else None), int(count)
        except Exception as exc:
            log.warning("activity call memory unavailable (%r); the activity runs, uncounted", exc)
            return None, 0

    def end(self, key: str, message: wire.ResultMessage, ttl_seconds: float) -> None:
        count_key, remembered = f"ledgerflow:deliveries:{key}", result_key(key)
        if self._redis is None:
            with self._lock:
                self._local.pop(count_key, None)
            return
        text = json.dumps(message.to_wire(), separators=(",", ":"))
        try:
            pipe = self._redis.pipeline()
            pipe.delete(count_key)
            if ttl_seconds > 0 and len(text) <= MAX_REMEMBERED_BYTES:
                pipe.set(remembered, text, ex=max(1, int(ttl_seconds)))
            pipe.execute()
        except Exception as exc:  # the count expires; a later death counts one too many at worst
            log.warning("activity call memory not updated (%r)", exc)
