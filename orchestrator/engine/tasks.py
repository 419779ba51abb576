"""What workflow code yields: tasks that complete when history says so.

A task completes with a result or fails with an exception that is thrown into the
generator. Composite tasks (`when_all`, `when_any`) complete from their children; a task may
belong to several composites (an event task reused across two `when_any` calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Task(Generic[T]):
    """Something a workflow can wait for."""

    def __init__(self) -> None:
        self._is_complete = False
        self._result: Any = None
        self._exception: BaseException | None = None
        #: Composites and hooks (retry, event timeout) told when this task completes.
        self._listeners: list[Any] = []

    @property
    def is_complete(self) -> bool:
        return self._is_complete

    @property
    def is_failed(self) -> bool:
        return self._exception is not None

    def get_result(self) -> T:
        if not self._is_complete:
            raise ValueError("The task has not completed.")
        if self._exception is not None:
            raise self._exception
        return self._result

    def get_exception(self) -> BaseException:
        if self._exception is None:
            raise ValueError("The task has not failed.")
        return self._exception

    def _finish(self) -> None:
        self._is_complete = True
        for parent in list(self._listeners):
            parent._on_child_completed(self)


class CompletableTask(Task[T]):
    """A task completed from outside: by a history event, or by another task."""

    def complete(self, result: T) -> None:
        if self._is_complete:
            return
        self._result = result
        self._finish()

    def fail(self, exception: BaseException) -> None:
        if self._is_complete:
            return
        self._exception = exception
        self._finish()


class TimerTask(CompletableTask[None]):
    """A durable timer: completes when its TimerFired event is applied."""

    def __init__(self, timer_id: int, fire_at: datetime) -> None:
        super().__init__()
        self.timer_id = timer_id
        self.fire_at = fire_at


class CompositeTask(Task[T]):
    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        super().__init__()
        self._tasks = list(tasks)
        for child in self._tasks:
            if not isinstance(child, Task):
                raise TypeError(f"when_all/when_any take tasks, got {type(child).__name__}")
            child._listeners.append(self)
        self._check()

    def _on_child_completed(self, child: Task[Any]) -> None:
        if not self._is_complete:
            self._check()

    def _check(self) -> None:
        raise NotImplementedError


class WhenAllTask(CompositeTask[list[Any]]):
    """Results in input order once every child is done; then the first failure (in input
    order) is raised, so the outcome does not depend on the order completions arrived in.

    It counts the children still running (each entry of the list, a task listed twice
    twice), so a completion costs O(1): a fan-in of n results is O(n), not O(n^2)."""

    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        tasks = list(tasks)
        self._running = sum(1 for t in tasks if isinstance(t, Task) and not t.is_complete)
        super().__init__(tasks)

    def _on_child_completed(self, child: Task[Any]) -> None:
        self._running -= 1
        super()._on_child_completed(child)

    def _check(self) -> None:
        if self._running == 0:
            failed = [t for t in self._tasks if t.is_failed]
            if failed:
                self._exception = failed[0].get_exception()
            else:
                self._result = [t._result for t in self._tasks]
            self._finish()


class WhenAnyTask(CompositeTask[Task[Any]]):
    """The first child to complete, as the task object itself; never fails."""

    def _check(self) -> None:
        for t in self._tasks:
            if t.is_complete:
                self._result = t
                self._finish()
                return


def when_all(tasks: Sequence[Task[T]]) -> WhenAllTask:
    """A task that completes when all of `tasks` have completed."""
    return WhenAllTask(tasks)


def when_any(tasks: Sequence[Task[Any]]) -> WhenAnyTask:
    """A task that completes when any of `tasks` completes; its result is that task."""
    return WhenAnyTask(tasks)
