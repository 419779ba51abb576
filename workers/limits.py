"""The gate an activity passes before it runs: a per-process slot and a per-name slot; and
the cap on deliveries that died.

Excess work waits, it is never rejected: when a name is at its limit the task is put back
on its queue with a short countdown (Celery `retry`, acks_late keeps it safe) instead of
holding a worker process while it waits.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from brokers import wire
from brokers.deliveries import CallMemory
from brokers.limits import NameLimiter
from orchestrator.engine import events as ev


class ActivityGate:
    def __init__(self, limiter: NameLimiter | None = None, per_name: dict[str, int] | None = None,
                 process_limit: int | None = None) -> None:
        self.limiter = limiter
        self.per_name = dict(per_name or {})
        self._process = threading.BoundedSemaphore(process_limit) if process_limit else None

    @contextmanager
    def enter(self, task: Any, name: str) -> Iterator[None]:
        with ExitStack() as stack:
            # Neither slot is waited for in place: a waiting activity would hold a pool thread
            # that an orchestration step (in-process, they share the pool) may need.
            if self._process is not None:
                if not self._process.acquire(blocking=False):
                    raise _wait(task)
                stack.callback(self._process.release)
            limit = self.per_name.get(name)
            if limit is not None and self.limiter is not None:
                token = self.limiter.try_acquire("activity", name, limit)
                if token is None:
                    raise _wait(task)
                stack.enter_context(self.limiter.held(token))
            yield


def _wait(task: Any) -> BaseException:
    """Put the task back on its queue for a moment (it retries forever: max_retries=None)."""
    return task.retry(countdown=random.uniform(0.05, 0.3))


#: Error type of an activity call parked by the delivery cap (not retried by the engine).
DELIVERY_LIMIT_EXCEEDED = "ActivityDeliveryLimitExceeded"


class DeliveryCap:
    """Parks an activity call whose worker process died on each of its last ``limit``
    deliveries: the next delivery is answered with a failure instead of being run (0: no cap).
    Also remembers each call's result for ``remember_seconds``, so a re-sent copy of a call
    that already finished sends that result again instead of running it again."""

    def __init__(self, memory: CallMemory | None, limit: int, remember_seconds: float = 0) -> None:
        self.memory = memory
        self.limit = limit
        self.remember_seconds = remember_seconds

    def begin(self, request: wire.ActivityRequest) -> tuple[wire.ResultMessage | None, ev.FailureDetails | None]:
        """Count this start. Returns (the result message this call already sent, or None;
        the failure to answer with when the call is parked, or None). Call `end` after a run:
        a process that dies before it leaves the count raised."""
        if self.memory is None:
            return None, None
        result, starts = self.memory.begin(request.delivery_key)
        died = starts - 1
        if result is not None or self.limit <= 0 or died < self.limit:
            return result, None
        return None, ev.FailureDetails(
            f"Activity '{request.name}' of workflow instance '{request.instance_id}' was not run again: "
            f"its worker process died on each of its last {died} deliveries (killed, out of memory, or a "
            "crash in native code). Fix the activity, then rerun or purge the instance; "
            "LEDGERFLOW_MAX_DELIVERIES sets the cap.", DELIVERY_LIMIT_EXCEEDED)

    def end(self, request: wire.ActivityRequest, message: wire.ResultMessage) -> None:
        if self.memory is not None:
            self.memory.end(request.delivery_key, message, self.remember_seconds)
