"""Change notifications over Redis pub/sub: publish a short message, listen in a thread.

Used to wake waiters (`wait_for_workflow_completion`, ...) in other processes without
polling the database. Pub/sub is fire-and-forget: a message published while a listener is
disconnected is lost, so the listener calls `on_reset` every time it (re)subscribes and
waiters re-read then; they also re-read at a slow backstop interval.

Publishing never raises and never blocks a step for long: short socket timeouts, and after
a failure publishing is skipped for `RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ledgerflow.notifications")

RETRY_AFTER_SECONDS = 2.0
_POLL_SECONDS = 0.5
_MAX_BACKOFF_SECONDS = 2.0


def redis_url(broker_url: str) -> str | None:
    """The redis-py URL for a Celery broker URL, or None if the broker is not Redis."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return broker_url
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url[len("redis+socket://"):]
    return None


class RedisChannel:
    """One pub/sub channel: `publish(message)` from any thread; `listen()` starts a thread
    that calls `on_message(text)` for every message and `on_reset()` on every (re)subscribe."""

    def __init__(self, url: str, channel: str, on_message: Callable[[str], None],
                 on_reset: Callable[[], None]) -> None:
        import redis  # noqa: F401  (imported now, not on the first publish right after a commit)

        self.url = url
        self.channel = channel
        self._on_message = on_message
        self._on_reset = on_reset
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._skip_until = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed = threading.Event()

    # -- publishing --------------------------------------------------------------------

    def publish(self, message: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            with self._lock:
                if self._publisher is None:
                    self._publisher = _client(self.url, socket_timeout=1.0)
                client = self._publisher
            client.publish(self.channel, message)
        except Exception as exc:  # a lost notification costs a waiter one backstop interval
            self._skip_until = time.monotonic() + RETRY_AFTER_SECONDS
            log.warning("change notification not published (%s); retrying in %.0fs", _brief(exc),
                        RETRY_AFTER_SECONDS)

    # -- listening ---------------------------------------------------------------------

    def listen(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                            name="ledgerflow-redis-changes", daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """True when subscribed. Does not wait while the last connection attempt failed."""
        if self._ready.is_set():
            return True
        if self._failed.is_set():
            return False
        return self._ready.wait(timeout)

    def _run(self, stop: threading.Event) -> None:
        backoff = 0.05
        while not stop.is_set():
            pubsub = None
            try:
                pubsub = _client(self.url, socket_timeout=None).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._failed.clear()
                self._ready.set()
                self._on_reset()
                backoff = 0.05
                while not stop.is_set():
                    message = pubsub.get_message(timeout=_POLL_SECONDS)
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self._on_message(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
            except Exception as exc:
                if not stop.is_set():
                    log.warning("change listener disconnected (%s); reconnecting", _brief(exc))
                self._failed.set()
            finally:
                self._ready.clear()
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
            stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
            publisher, self._publisher = self._publisher, None
        if thread is not None:
            thread.join(_POLL_SECONDS * 4)
        if publisher is not None:
            try:
                publisher.close()
            except Exception:
                pass


def _client(url: str, *, socket_timeout: float | None) -> Any:
    import redis  # celery[redis] installs it; imported lazily so memory:// needs nothing

    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=socket_timeout,
                                health_check_interval=15)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
