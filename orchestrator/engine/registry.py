"""Registered workflows and activities, by name (and, for workflows, by version)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.errors import ActivityNotRegisteredError, OrchestratorNotRegisteredError

#: Attribute set on functions by `alternate_name`, as Dapr's SDK does.
ALTERNATE_NAME_ATTR = "_dapr_alternate_name"
#: Attribute set on functions when they are registered, so `call_activity(fn)` finds the name.
REGISTERED_NAME_ATTR = "_ledgerflow_registered_name"


def registered_name(fn: Callable[..., Any] | str, explicit: str | None = None) -> str:
    """Explicit name, else the registered or alternate name, else `__name__`."""
    if isinstance(fn, str):
        return fn
    if explicit:
        return explicit
    for attr in (REGISTERED_NAME_ATTR, ALTERNATE_NAME_ATTR):
        name = getattr(fn, attr, None)
        if name:
            return name
    return fn.__name__


class VersionNotAvailable(LookupError):
    """A run recorded a workflow version this process does not have registered."""


@dataclass
class _WorkflowVersions:
    unversioned: Callable[..., Any] | None = None
    versions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    explicit_latest: str | None = None

    @property
    def latest(self) -> str:
        return self.explicit_latest or list(self.versions)[-1]


class Registry:
    """Name -> function. Duplicate names raise ValueError; adding after start is allowed."""

    def __init__(self) -> None:
        self._workflows: dict[str, _WorkflowVersions] = {}
        self._activities: dict[str, Callable[..., Any]] = {}

    def add_workflow(self, fn: Callable[..., Any], name: str | None = None) -> str:
        wf_name = registered_name(fn, name)
        entry = self._workflows.setdefault(wf_name, _WorkflowVersions())
        if entry.unversioned is not None or entry.versions:
            raise ValueError(f"A workflow named '{wf_name}' is already registered.")
        entry.unversioned = fn
        _mark(fn, wf_name)
        return wf_name

    def add_versioned_workflow(
        self, fn: Callable[..., Any], name: str, version_name: str | None = None, is_latest: bool = False
    ) -> str:
        """Register one version of `name`. New runs take the version marked latest, else the
        most recently registered one; a running instance keeps the version it started with.
        As in `dapr-ext-workflow`, the last registration with `is_latest=True` wins."""
        version = version_name or fn.__name__
        entry = self._workflows.setdefault(name, _WorkflowVersions())
        if entry.unversioned is not None:
            raise ValueError(f"A workflow named '{name}' is already registered without a version.")
        if version in entry.versions:
            raise ValueError(f"Version '{version}' of workflow '{name}' is already registered.")
        entry.versions[version] = fn
        if is_latest:
            entry.explicit_latest = version
        _mark(fn, name)
        return name

    def add_activity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        act_name = registered_name(fn, name)
        if act_name in self._activities:
            raise ValueError(f"An activity named '{act_name}' is already registered.")
        self._activities[act_name] = fn
        _mark(fn, act_name)
        return act_name

    def workflow(self, name: str, version: str | None = None) -> tuple[Callable[..., Any], str | None]:
        """The function for `name` and the version to record (None when unversioned).

        `version=None` means a new run: the latest version. A recorded version that is not
        registered raises VersionNotAvailable; an unknown name raises
        OrchestratorNotRegisteredError.
        """
        entry = self._workflows.get(name)
        if entry is None:
            raise OrchestratorNotRegisteredError(f"A '{name}' orchestrator was not registered.")
        if version is None:
            if entry.unversioned is not None:
                return entry.unversioned, None
            return entry.versions[entry.latest], entry.latest
        fn = entry.versions.get(version)
        if fn is None:
            raise VersionNotAvailable(
                f"Workflow '{name}' was started with version '{version}', which is not registered here; "
                f"registered versions: {sorted(entry.versions) or 'none'}. Deploy code that registers it."
            )
        return fn, version

    def activity(self, name: str) -> Callable[..., Any]:
        fn = self._activities.get(name)
        if fn is None:
            raise ActivityNotRegisteredError(f"Activity function named '{name}' was not registered!")
        return fn

    def workflow_names(self) -> list[str]:
        return sorted(self._workflows)

    def activity_names(self) -> list[str]:
        return sorted(self._activities)


def _mark(fn: Callable[..., Any], name: str) -> None:
    try:
        setattr(fn, REGISTERED_NAME_ATTR, name)
    except (AttributeError, TypeError):  # builtins and bound methods cannot take attributes
        pass
