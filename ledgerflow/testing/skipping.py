"""Time skipping: fire timers at the test environment's clock, and move that clock to the next
due timer when nothing but the passing of time can make progress.

A thread fires timers as they fall due (the in-process ticker's job, at the skipping clock),
and, while a test waits for a workflow to complete (`skipping()`), moves the clock to the next
timer whenever no step is pending and no activity call is out. `advance()` does the same on
the caller's thread up to a given time, letting the workflows react to each timer in turn.
Timers are fired by the store and the instances woken through the broker, as the ticker does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from ledgerflow.testing.clock import SkippingClock
from orchestrator import ticker
from orchestrator.service import OrchestratorService
from persistence import lull as lulls

log = logging.getLogger("ledgerflow.testing")

#: Seconds the thread waits for a commit before it looks again (timers due by real time).
IDLE_CHECK_SECONDS = 0.02


class TimeSkipper:
    def __init__(self, service: OrchestratorService, clock: SkippingClock, settle_timeout: float) -> None:
        self.service = service
        self.clock = clock
        self.settle_timeout = settle_timeout
        self._changed = threading.Condition()
        self._changes = 0
        self._waiters = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledgerflow-time-skipper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def changed(self, *_: object) -> None:
        """Something committed (the orchestrator's on_commit): look again now."""
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    # -- skipping ----------------------------------------------------------------------

    @contextmanager
    def skipping(self) -> Iterator[None]:
        """While inside, the clock jumps to the next timer whenever nothing else can happen."""
        with self._changed:
            self._waiters += 1
        self.changed()
        try:
            yield
        finally:
            with self._changed:
                self._waiters -= 1

    def advance(self, duration: timedelta) -> None:
        """Let `duration` pass: each timer due within it fires at its time, once the work
        before it has settled. Raises TimeoutError when work stays in flight too long."""
        target = self.clock() + duration
        while True:
            lull = self._settled()
            if lull.next_timer is None or lull.next_timer > target:
                self.clock.skip_to(target)
                return
            self.clock.skip_to(lull.next_timer)
            self._fire_due()

    def _settled(self) -> lulls.Lull:
        deadline = time.monotonic() + self.settle_timeout
        while True:
            with self._changed:
                seen = self._changes
            lull = lulls.lull(self.service.store, self.clock())
            if not lull.busy:
                return lull
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"work still in flight after {self.settle_timeout:.0f}s "
                                   "(a step pending or an activity running); the clock was not moved")
            self._wait_for_change(seen, min(remaining, IDLE_CHECK_SECONDS))

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._stopping:
                    return
                seen, skip = self._changes, self._waiters > 0
            try:
                self._turn(skip)
            except Exception:  # a database hiccup must not end time for the test
                log.exception("time skipping failed; retrying")
            self._wait_for_change(seen, IDLE_CHECK_SECONDS)

    def _turn(self, skip: bool) -> None:
        now = self.clock()
        lull = lulls.lull(self.service.store, now)
        if lull.next_timer is None:
            return
        if lull.next_timer > now:
            if not skip or lull.busy:
                return
            self.clock.skip_to(lull.next_timer)
        self._fire_due()

    def _wait_for_change(self, seen: int, timeout: float) -> None:
        with self._changed:
            if self._changes == seen and not self._stopping:
                self._changed.wait(timeout)

    def _fire_due(self) -> None:
        app = self.service.app_id
        fired = self.service.store.fire_due_timers(self.clock(), ticker.timer_fired_message, app_id=app)
        self.service.publisher.wake([(app, t.instance_id) for t in fired])
