"""Activity registrations share one `task_unknown` receiver, which hands an unknown task to
the handler of its consumer's app only."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery, signals

from orchestrator.engine.registry import Registry
from workers import tasks


def _app(name: str) -> Celery:
    return Celery(name, broker="memory://", set_as_current=False)


def test_registering_again_adds_no_receiver() -> None:
    before = len(signals.task_unknown.receivers)
    apps = [_app(f"a{i}") for i in range(3)]
    for app in [*apps, *apps]:
        tasks.register_activity_tasks(app, Registry())
    assert len(signals.task_unknown.receivers) == before


def test_an_unknown_task_goes_to_its_own_apps_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _app("first"), _app("second")
    for app in (first, second):
        tasks.register_activity_tasks(app, Registry())
    seen: list[tuple[Celery, str]] = []

    def record(self: Any, consumer: Any, message: Any, name: str) -> None:
        seen.append((self.app, name))

    monkeypatch.setattr(tasks._UnknownActivities, "__call__", record)

    class Consumer:
        app = second

    signals.task_unknown.send(sender=Consumer(), message=None, name="x", id="1", exc=None)
    signals.task_unknown.send(sender=object(), message=None, name="y", id="2", exc=None)
    assert seen == [(second, "x")]
