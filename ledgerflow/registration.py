"""Dapr's registration decorators over the engine's Registry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator.engine.registry import ALTERNATE_NAME_ATTR, Registry

F = TypeVar("F", bound=Callable[..., Any])


def alternate_name(name: str | None = None) -> Callable[[F], F]:
    """Register the decorated workflow or activity under `name` instead of `__name__`."""

    def wrapper(fn: F) -> F:
        if not callable(fn):
            raise ValueError("The alternate_name decorator can only be applied to functions")

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        setattr(inner, ALTERNATE_NAME_ATTR, name or fn.__name__)
        inner.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrapper


class Registrar:
    """The registration half of WorkflowRuntime: decorators and register_* methods."""

    def __init__(self) -> None:
        self.registry = Registry()

    def register_workflow(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.registry.add_workflow(fn, name)

    def register_versioned_workflow(
        self, fn: Callable[..., Any], *, name: str, version_name: str | None = None, is_latest: bool = False
    ) -> None:
        self.registry.add_versioned_workflow(fn, name, version_name, is_latest)

    def register_activity(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.registry.add_activity(fn, name)

    def workflow(self, __fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """`@wfr.workflow` or `@wfr.workflow(name="...")`."""

        def wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register_workflow(fn, name=name)
            return fn

        return wrapper(__fn) if __fn is not None else wrapper

    def versioned_workflow(
        self, __fn: Callable[..., Any] | None = None, *, name: str, version_name: str | None = None,
        is_latest: bool = False,
    ) -> Any:
        """`@wfr.versioned_workflow(name="wf", version_name="v2", is_latest=True)`."""

        def wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register_versioned_workflow(fn, name=name, version_name=version_name, is_latest=is_latest)
            return fn

        return wrapper(__fn) if __fn is not None else wrapper

    def activity(self, __fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """`@wfr.activity` or `@wfr.activity(name="...")`."""

        def wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register_activity(fn, name=name)
            return fn

        return wrapper(__fn) if __fn is not None else wrapper
