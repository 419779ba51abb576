"""Waking waiters when an instance changes, without polling the database.

Every writer that changes an instance's status calls `notify` (the orchestrator after each
committed step, through `commit_hook`; the management layer after suspend, resume and
purge). That wakes the waiters of that instance in this process at once and publishes the
instance ID on the deployment's change feed, which wakes waiters in other processes:

- Redis pub/sub when the broker is Redis (`brokers.notifications`);
- else PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL (`persistence.notifications`);
  both through one `change_channel.ListeningChannel`;
- else (the embedded default: SQLite and the in-memory broker) no feed: waiters in the
  process that runs the workflows wake at once, waiters in another process re-read every
  `FALLBACK_POLL_SECONDS`.

A waiter re-reads the instance only when woken. Notifications are fire-and-forget (a
publisher can die between its commit and its publish), so with a feed a waiter also re-reads
every `BACKSTOP_SECONDS`, and every time the listener reconnects.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from brokers import notifications as broker_notifications
from brokers import urls as broker_urls
from ledgerflow.change_channel import ListeningChannel, Transport
from ledgerflow.config import Settings
from persistence import notifications as db_notifications

CHANNEL = "ledgerflow_changes"
BACKSTOP_SECONDS = 5.0
FALLBACK_POLL_SECONDS = 0.25
READY_TIMEOUT_SECONDS = 2.0
#: Instance IDs per change message (64 characters at most each).
NOTIFY_CHUNK = 100

#: Messages are "<origin> <instance_id>"; a process skips its own (it woke its waiters already).
ORIGIN = uuid.uuid4().hex[:12]


class Watch:
    __slots__ = ("cond", "version", "refs")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.version = 0
        self.refs = 0


class Watches:
    """The instances someone in this process waits for; `notify` wakes only their waiters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: dict[str, Watch] = {}
        # replaced, never changed in place: a notifier reads it without copying
        self._listeners: tuple[Callable[[str | None], None], ...] = ()

    def listen(self, callback: Callable[[str | None], None]) -> Callable[[], None]:
        """Call `callback(instance_id)` on every change of any instance (None: anything may
        have changed) until the returned function is called. Callbacks must not block."""
        with self._lock:
            self._listeners = (*self._listeners, callback)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(c for c in self._listeners if c is not callback)

        return stop

    @contextmanager
    def watch(self, instance_id: str) -> Iterator[Watch]:
        with self._lock:
            watch = self._watches.get(instance_id)
            if watch is None:
                watch = self._watches[instance_id] = Watch(self._lock)
            watch.refs += 1
        try:
            yield watch
        finally:
            with self._lock:
                watch.refs -= 1
                if watch.refs == 0:
                    self._watches.pop(instance_id, None)

    def wait(self, watch: Watch, seen: int, timeout: float | None) -> None:
        """Block until `watch.version` differs from `seen`, or `timeout` passes."""
        with self._lock:
            if watch.version == seen:
                watch.cond.wait(timeout)

    def notify(self, instance_id: str) -> None:
        with self._lock:
            watch = self._watches.get(instance_id)
            if watch is not None:
                watch.version += 1
                watch.cond.notify_all()
            listeners = self._listeners
        for callback in listeners:
            callback(instance_id)

    def notify_all(self) -> None:
        with self._lock:
            for watch in self._watches.values():
                watch.version += 1
                watch.cond.notify_all()
            listeners = self._listeners
        for callback in listeners:
            callback(None)


WATCHES = Watches()


class ChangeFeed:
    """The cross-process feed of one deployment, shared by everything in this process that
    uses it. The listener runs while at least one manager holds it (`acquire`/`release`)."""

    def __init__(self, kind: str, channel: ListeningChannel) -> None:
        self.kind = kind
        self.channel = channel
        self._lock = threading.Lock()
        self._holders = 0

    def publish(self, instance_ids: Sequence[str]) -> None:
        """One message per `NOTIFY_CHUNK` instances (PostgreSQL caps a payload at 8,000 bytes)."""
        for start in range(0, len(instance_ids), NOTIFY_CHUNK):
            self.channel.publish(" ".join([ORIGIN, *instance_ids[start:start + NOTIFY_CHUNK]]))

    def acquire(self) -> None:
        with self._lock:
            self._holders += 1
            self.channel.listen()

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders <= 0:
                self._holders = 0
                self.channel.close()

    def ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        return self.channel.wait_ready(timeout)


_feeds: dict[tuple[str, str], ChangeFeed | None] = {}
_feeds_lock = threading.Lock()


def feed_for(settings: Settings) -> ChangeFeed | None:
    """This process's feed for the deployment `settings` names (None: the embedded default)."""
    key = _feed_key(settings)
    if key is None:
        return None
    with _feeds_lock:
        if key not in _feeds:
            _feeds[key] = _make_feed(*key)
        return _feeds[key]


def _feed_key(settings: Settings) -> tuple[str, str] | None:
    url = broker_urls.redis_url(settings.broker_url)
    if url is not None:
        return ("redis", url)
    try:
        conninfo = db_notifications.postgres_conninfo(settings.database_url)
    except Exception:  # an unparsable URL fails later, where the store opens it
        return None
    return ("postgres", conninfo) if conninfo else None


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's listener threads: start from scratch."""
    global ORIGIN, _feeds_lock
    ORIGIN = uuid.uuid4().hex[:12]
    _feeds.clear()
    _feeds_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _on_message(text: str) -> None:
    origin, _, instance_ids = text.partition(" ")
    if origin != ORIGIN:
        for instance_id in instance_ids.split():
            WATCHES.notify(instance_id)


def _make_feed(kind: str, target: str) -> ChangeFeed:
    transport: Transport = (broker_notifications.RedisTransport(target) if kind == "redis"
                            else db_notifications.PostgresTransport(target))
    return ChangeFeed(kind, ListeningChannel(transport, CHANNEL, _on_message, WATCHES.notify_all))


def notify(instance_id: str, feed: ChangeFeed | None) -> None:
    """An instance changed: wake its waiters here, and elsewhere through `feed`."""
    notify_many([instance_id], feed)


def notify_many(instance_ids: Sequence[str], feed: ChangeFeed | None) -> None:
    """Instances changed (one batch): wake their waiters here, and elsewhere through `feed`
    with one message for many instances."""
    for instance_id in instance_ids:
        WATCHES.notify(instance_id)
    if feed is not None and instance_ids:
        feed.publish(instance_ids)


def commit_hook(settings: Settings) -> Callable[[Sequence[str]], None]:
    """The orchestrator's `on_commit`: notify after every committed batch of steps."""
    feed = feed_for(settings)

    def on_commit(instance_ids: Sequence[str]) -> None:
        notify_many(instance_ids, feed)

    return on_commit
