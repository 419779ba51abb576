"""The work-item broker between the app's SDK streams and the sidecar's steps and activity calls.

Each `GetWorkItems` call of a connected SDK is a `Stream`: a queue of work items the gRPC
thread serving the call writes out. `WorkItems.call` hands one work item to the live stream
with the fewest unanswered ones (taking turns among equals), under a fresh completion token, and waits for the SDK's answer
(`CompleteOrchestratorTask` / `CompleteActivityTask` carry the token back to `complete`;
SDKs that do not echo it, as the JavaScript one, are matched by the work's key: the instance
ID, and the task ID for an activity, as Dapr's own sidecar matches them).
A stream that goes away fails the calls waiting on it (`StreamLost`); an answer that does
not come within the timeout ends that stream (`AppTimeout`: the SDK reconnects, the work
goes to a live stream again). Either way the caller's step rolls back, or its activity call
is given back to the queue: nothing is half done.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger("ledgerflow.sidecar")

#: What a stream's queue yields when the stream is to end.
_END = object()


def workflow_key(instance_id: str) -> tuple[Any, ...]:
    """The key of an orchestrator work item (one at a time per instance: the step holds its lock)."""
    return ("workflow", instance_id)


def activity_key(instance_id: str, task_id: int) -> tuple[Any, ...]:
    return ("activity", instance_id, task_id)


class NoAppConnected(RuntimeError):
    """No SDK of this app is connected to this sidecar: the work stays queued."""


class StreamLost(RuntimeError):
    """The SDK stream a work item went to ended before it answered."""


class AppTimeout(TimeoutError):
    """The SDK did not answer a work item in time."""


class Stream:
    """One connected SDK: the work items for it, in order."""

    def __init__(self, number: int) -> None:
        self.number = number
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.open = True
        #: work items sent to it and not answered yet
        self.pending = 0

    def send(self, item: Any) -> None:
        self._items.put(item)

    def end(self) -> None:
        self.open = False
        self._items.put(_END)

    def items(self) -> Iterator[Any]:
        """The work items to write out, until the stream ends."""
        while True:
            item = self._items.get()
            if item is _END:
                return
            yield item


class WorkItems:
    """Streams of one app's SDKs, and the work items waiting for their answers."""

    def __init__(self, on_connect: Callable[[], None] | None = None) -> None:
        #: called (in the connecting thread) when the first stream connects
        self.on_connect = on_connect
        self._lock = threading.Lock()
        self._streams: list[Stream] = []
        self._pending: dict[str, tuple[Stream, Future[Any], tuple[Any, ...]]] = {}
        #: the token of the pending work item of each key
        self._tokens: dict[tuple[Any, ...], str] = {}
        self._numbers = itertools.count(1)
        self._turn = itertools.count()
        self._connected = threading.Condition(self._lock)
        self.closed = False

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._streams)

    def connect(self) -> Stream:
        stream = Stream(next(self._numbers))
        with self._lock:
            first = not self._streams
            self._streams.append(stream)
            self._connected.notify_all()
        log.info("app SDK connected (stream %d)", stream.number)
        if first and self.on_connect is not None:
            self.on_connect()
        return stream

    def disconnect(self, stream: Stream) -> None:
        """The stream ended: the work items it had not answered fail with StreamLost."""
        with self._lock:
            if stream not in self._streams:
                return  # already ended (the sidecar ended it, then its call finished)
            self._streams.remove(stream)
            lost = [token for token, (owner, _, _) in self._pending.items() if owner is stream]
            futures = [self._take(token)[1] for token in lost]
        stream.end()
        for future in futures:
            future.set_exception(StreamLost(f"the app's SDK stream {stream.number} ended before it answered"))
        log.info("app SDK disconnected (stream %d, %d work item(s) given back)", stream.number, len(futures))

    def wait_connected(self, timeout: float) -> bool:
        """Whether a stream is connected, waiting up to `timeout` seconds for one."""
        with self._connected:
            return self._connected.wait_for(lambda: bool(self._streams) or self.closed, timeout) and not self.closed

    def call(self, build: Callable[[str], Any], timeout: float, what: str, key: tuple[Any, ...]) -> Any:
        """Send the work item `build(token)` to a live stream and return the SDK's answer.

        `key` identifies the work for an answer without the token. Raises NoAppConnected (no
        stream), StreamLost or AppTimeout; `what` names the work in their messages."""
        token = uuid.uuid4().hex
        future: Future[Any] = Future()
        with self._lock:
            if not self._streams or self.closed:
                raise NoAppConnected(f"{what}: no app is connected to this sidecar; the work stays queued until "
                                     "the app starts (its Dapr SDK connects to this sidecar's --grpc-port, "
                                     "its DAPR_GRPC_PORT)")
            stream = self._least_busy()
            stream.pending += 1
            self._pending[token] = (stream, future, key)
            self._tokens[key] = token
        stream.send(build(token))
        try:
            return future.result(timeout)
        except FutureTimeout:
            with self._lock:
                self._take(token)
            log.warning("%s: the app did not answer within %.1f s; ending its stream %d so it reconnects",
                        what, timeout, stream.number)
            self.disconnect(stream)
            raise AppTimeout(f"{what}: the app did not answer within {timeout:.1f} s; the work is sent again") \
                from None

    def complete(self, token: str, answer: Any, key: tuple[Any, ...]) -> bool:
        """The SDK's answer for `token` (or, without one, for `key`); False when nothing waits
        for it (timed out, or its stream was lost and the work went elsewhere)."""
        with self._lock:
            entry = self._take(token or self._tokens.get(key, ""))
        if entry is None:
            return False
        entry[1].set_result(answer)
        return True

    def _take(self, token: str) -> tuple[Stream, Future[Any], tuple[Any, ...]] | None:
        """Remove the pending work item `token` (with the lock held)."""
        entry = self._pending.pop(token, None)
        if entry is None:
            return None
        entry[0].pending -= 1
        if self._tokens.get(entry[2]) == token:
            del self._tokens[entry[2]]
        return entry

    def _least_busy(self) -> Stream:
        """The stream with the fewest unanswered work items, taking turns among equals (with
        the lock held)."""
        start = next(self._turn) % len(self._streams)
        return min(self._streams[start:] + self._streams[:start], key=lambda s: s.pending)

    def close(self) -> None:
        """End every stream (the sidecar stops); nothing more is sent."""
        with self._lock:
            self.closed = True
            self._connected.notify_all()
            streams = list(self._streams)
        for stream in streams:
            self.disconnect(stream)
