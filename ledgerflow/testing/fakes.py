"""Activities replaced by fakes for one test environment, leaving the app's own registry as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.engine.registry import Registry


class FakeableRegistry(Registry):
    """The app's workflows and activities, with `fake(name, fn)` standing in for an activity."""

    def __init__(self, app: Registry) -> None:
        super().__init__()
        self._app = app
        self._fakes: dict[str, Callable[..., Any]] = {}

    def fake(self, name: str, fn: Callable[..., Any]) -> None:
        self._fakes[name] = fn

    def workflow(self, name: str, version: str | None = None) -> tuple[Callable[..., Any], str | None]:
        return self._app.workflow(name, version)

    def activity(self, name: str) -> Callable[..., Any]:
        fake = self._fakes.get(name)
        return fake if fake is not None else self._app.activity(name)

    def workflow_names(self) -> list[str]:
        return self._app.workflow_names()

    def activity_names(self) -> list[str]:
        return sorted({*self._app.activity_names(), *self._fakes})
