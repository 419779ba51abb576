"""One change-feed channel over a pub/sub transport: publish from any thread, listen in a thread.

The transports (`brokers.notifications.RedisTransport`, `persistence.notifications.PostgresTransport`)
only connect, send and receive; everything else is here, once:

- Publishing never raises and never blocks a step for long: the transports use short socket
  timeouts, and after a failure publishing is skipped for `RETRY_AFTER_SECONDS` (a lost
  notification costs a waiter one backstop interval, see `ledgerflow.changes`).
- Pub/sub is fire-and-forget: a message sent while the listener is reconnecting is lost, so
  the listener calls `on_reset` on every (re)subscribe and waiters re-read then. Reconnects
  back off from 50 ms to `MAX_BACKOFF_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger("ledgerflow.notifications")

RETRY_AFTER_SECONDS = 2.0
POLL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 2.0


class Transport(Protocol):
    """What a channel needs of a pub/sub system."""

    name: str  # names the listener thread, e.g. "redis"

    def open_publisher(self) -> Any: ...

    def send(self, publisher: Any, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> Any: ...

    def receive(self, subscription: Any, timeout: float) -> Iterable[str]: ...

    def close(self, connection: Any) -> None: ...


class ListeningChannel:
    """`publish(message)` from any thread; `listen()` starts a thread that calls
    `on_message(text)` for every message and `on_reset()` on every (re)subscribe."""

    def __init__(self, transport: Transport, channel: str, on_message: Callable[[str], None],
                 on_reset: Callable[[], None]) -> None:
        self.transport = transport
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

    def publish(self, message: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        with self._lock:
            try:
                if self._publisher is None:
                    self._publisher = self.transport.open_publisher()
                self.transport.send(self._publisher, self.channel, message)
            except Exception as exc:
                self._skip_until = time.monotonic() + RETRY_AFTER_SECONDS
                self._close_quietly(self._publisher)
                self._publisher = None
                log.warning("change notification not published (%s); retrying in %.0fs", _brief(exc),
                            RETRY_AFTER_SECONDS)

    def listen(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                            name=f"ledgerflow-{self.transport.name}-changes", daemon=True)
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
            subscription = None
            try:
                subscription = self.transport.subscribe(self.channel)
                self._failed.clear()
                self._ready.set()
                self._on_reset()
                backoff = 0.05
                while not stop.is_set():
                    for text in self.transport.receive(subscription, POLL_SECONDS):
                        self._on_message(text)
            except Exception as exc:
                if not stop.is_set():
                    log.warning("change listener disconnected (%s); reconnecting", _brief(exc))
                self._failed.set()
            finally:
                self._ready.clear()
                self._close_quietly(subscription)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
            publisher, self._publisher = self._publisher, None
        if thread is not None:
            thread.join(POLL_SECONDS * 4)
        self._close_quietly(publisher)

    def _close_quietly(self, connection: Any) -> None:
        if connection is not None:
            try:
                self.transport.close(connection)
            except Exception:
                pass


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
