"""The gate an activity passes before it runs: a per-process slot and a per-name slot.

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

from brokers.limits import NameLimiter


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
