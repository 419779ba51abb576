"""`/ui/changes`: the change feed as server-sent events, so pages update without a reload.

Each message's data is the IDs of instances that changed (space-separated; `*` when anything
may have changed, e.g. after the feed reconnected). The page decides what to refresh. Changes
are gathered for `COALESCE_SECONDS` so a busy system sends a few messages a second, not one
per step. Without a cross-process feed (the embedded default, when the workflows run in another
process) a `*` is sent every `POLL_SECONDS`; with one, every `changes.BACKSTOP_SECONDS`
(a notification may be lost). A stream ends after `STREAM_SECONDS` (the browser reconnects),
and at once when the server stops (`stop_streams`), so open tabs do not hold up a shutdown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ledgerflow import changes

if TYPE_CHECKING:
    from ledgerflow.dashboard.app import Dashboard

COALESCE_SECONDS = 0.25
POLL_SECONDS = 2.0
STREAM_SECONDS = 30.0
MAX_IDS = 200
_END = ""  # put on a stream's queue: end the stream

_open: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()
_open_lock = threading.Lock()


def stop_streams() -> None:
    """End every open stream of this process (the server is stopping)."""
    with _open_lock:
        streams = list(_open)
    for loop, queue in streams:
        _put(loop, queue, _END)


def _put(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str], item: str) -> None:
    """From any thread; never raises into the notifier (a step's commit hook)."""
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:  # the loop has closed; the stream is gone
        pass


async def _stream(request: Request, feed: changes.ChangeFeed | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()
    stop = changes.WATCHES.listen(lambda iid: _put(loop, queue, iid or "*"))
    with _open_lock:
        _open.add((loop, queue))
    try:
        yield "retry: 1000\n\n"
        deadline = loop.time() + STREAM_SECONDS
        while loop.time() < deadline and not await request.is_disconnected():
            live = feed is not None and feed.ready(0)
            try:
                first = await asyncio.wait_for(queue.get(), changes.BACKSTOP_SECONDS if live else POLL_SECONDS)
            except asyncio.TimeoutError:
                yield "data: *\n\n"
                continue
            if first == _END:
                return
            await asyncio.sleep(COALESCE_SECONDS)
            ids = {first}
            while not queue.empty():
                ids.add(queue.get_nowait())
            if _END in ids:
                return
            yield "data: " + ("*" if "*" in ids or len(ids) > MAX_IDS else " ".join(sorted(ids))) + "\n\n"
    finally:
        stop()
        with _open_lock:
            _open.discard((loop, queue))


def changes_route(ui: Dashboard) -> Callable[[Request], Awaitable[Response]]:
    """The route; the first stream makes this process listen to the change feed, for good
    (releasing it when the last tab closes would stop and restart the listener at every
    reconnect, and stopping it blocks)."""
    feed = changes.feed_for(ui.manager.settings)
    listening = threading.Event()

    async def handler(request: Request) -> Response:
        if feed is not None and not listening.is_set():
            listening.set()
            await run_in_threadpool(feed.acquire)
        return StreamingResponse(_stream(request, feed),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return handler
