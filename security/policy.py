"""WorkflowAccessPolicy: which apps may call which workflows and activities of this app.

Resources are YAML files (`*.yaml`, `*.yml`, several documents per file allowed) in the
resources directory; documents of other kinds are ignored:

    apiVersion: dapr.io/v1alpha1
    kind: WorkflowAccessPolicy
    metadata: {name: billing-access}
    scopes: [billing]                 # the callee apps it governs; omitted or empty: all
    spec:
      rules:
        - callers: [{appID: orders}]  # globs
          workflows:
            - name: "invoice-*"       # glob
              operations: [schedule, get]   # schedule terminate raise pause resume purge get rerun
              requires:               # optional, checked in order
                - activity: verify_customer
          activities:
            - name: charge
              requires: [{workflow: checkout}, {activity: fraud_check, appID: risk}]

Evaluated on the callee. No policy governs the app: allow. Otherwise deny unless a rule
matches the caller, the operation and the name. Self-calls are always allowed. The caller's
app ID must come from its verified certificate: with no identity a cross-app call is denied.
`requires` items are matched, in order, against the caller's propagated history (an ordered
timeline of what it and its lineage did): each item needs a later match than the previous one;
`activity`/`childWorkflow` items need a completed call, `workflow` items a workflow in the
lineage. `requires` is denied when signing is off (propagated history cannot be trusted).
A `workflows` entry without `operations` allows `schedule` only.

Files are re-read when any of them is added, changed or removed, at most one second after
the change (checked on use, and by `PolicyStore.refresh`). A file that cannot be read or
parsed fails closed: it counts as a policy for every app with no rules.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("ledgerflow.policy")

API_VERSION = "dapr.io/v1alpha1"
KIND = "WorkflowAccessPolicy"
OPERATIONS = frozenset({"schedule", "terminate", "raise", "pause", "resume", "purge", "get", "rerun"})
DENIED_TYPE = "WorkflowAccessPolicyDenied"
DENIED_MESSAGE = "access denied by workflow access policy"
RESCAN_SECONDS = 1.0

#: One step of a caller's lineage: (kind, name, app_id, completed), kind in
#: "workflow", "activity", "childWorkflow".
TimelineEntry = tuple[str, str, "str | None", bool]


@dataclass(frozen=True)
class Requirement:
    kind: str
    name: str
    app_id: str | None = None

    def matches(self, entry: TimelineEntry) -> bool:
        kind, name, app_id, completed = entry
        if kind != self.kind or not fnmatch.fnmatchcase(name, self.name):
            return False
        if self.app_id is not None and not fnmatch.fnmatchcase(app_id or "", self.app_id):
            return False
        return completed or kind == "workflow"


@dataclass(frozen=True)
class Target:
    name: str
    operations: frozenset[str]
    requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class Rule:
    callers: tuple[str, ...]
    workflows: tuple[Target, ...] = ()
    activities: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    source: str
    scopes: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    def governs(self, app_id: str) -> bool:
        return not self.scopes or app_id in self.scopes


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


class PolicyError(ValueError):
    pass


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{what} must be a list")
    return value


def _requirements(raw: Any, what: str) -> tuple[Requirement, ...]:
    out = []
    for item in _list(raw, f"{what}.requires"):
        if not isinstance(item, dict):
            raise PolicyError(f"{what}.requires items must be mappings")
        kinds = [k for k in ("activity", "workflow", "childWorkflow") if k in item]
        if len(kinds) != 1:
            raise PolicyError(f"{what}.requires items need exactly one of activity, workflow, childWorkflow")
        app = item.get("appID")
        out.append(Requirement(kinds[0], str(item[kinds[0]]), str(app) if app is not None else None))
    return tuple(out)


def _targets(raw: Any, what: str, with_operations: bool) -> tuple[Target, ...]:
    out = []
    for i, item in enumerate(_list(raw, what)):
        if not isinstance(item, dict) or "name" not in item:
            raise PolicyError(f"{what}[{i}] needs a name")
        ops = frozenset({"schedule"})
        if with_operations and item.get("operations") is not None:
            ops = frozenset(str(o).lower() for o in _list(item.get("operations"), f"{what}[{i}].operations"))
            unknown = ops - OPERATIONS - {"*"}
            if unknown:
                raise PolicyError(f"{what}[{i}] has unknown operations {sorted(unknown)}")
            if "*" in ops:
                ops = OPERATIONS
        out.append(Target(str(item["name"]), ops, _requirements(item.get("requires"), f"{what}[{i}]")))
    return tuple(out)


def parse_document(doc: Any, source: str) -> Policy | None:
    """A policy from one YAML document; None for documents of another kind."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        return None
    if doc.get("apiVersion") != API_VERSION:
        raise PolicyError(f"apiVersion must be {API_VERSION}")
    name = str((doc.get("metadata") or {}).get("name") or source)
    scopes = tuple(str(s) for s in _list(doc.get("scopes"), "scopes"))
    rules = []
    for i, raw in enumerate(_list((doc.get("spec") or {}).get("rules"), "spec.rules")):
        if not isinstance(raw, dict):
            raise PolicyError(f"spec.rules[{i}] must be a mapping")
        callers = []
        for c in _list(raw.get("callers"), f"spec.rules[{i}].callers"):
            if not isinstance(c, dict) or "appID" not in c:
                raise PolicyError(f"spec.rules[{i}].callers items need an appID")
            callers.append(str(c["appID"]))
        rules.append(Rule(tuple(callers), _targets(raw.get("workflows"), f"spec.rules[{i}].workflows", True),
                          _targets(raw.get("activities"), f"spec.rules[{i}].activities", False)))
    return Policy(name, source, scopes, tuple(rules))


def load_file(path: Path) -> list[Policy]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
        return [p for p in (parse_document(d, path.name) for d in docs) if p is not None]
    except (OSError, yaml.YAMLError, PolicyError, UnicodeDecodeError) as exc:
        log.error("access policy file %s is invalid (%s); it denies every cross-app call until fixed", path, exc)
        return [Policy(f"invalid:{path.name}", path.name)]


def requirements_met(requires: Sequence[Requirement], timeline: Sequence[TimelineEntry]) -> bool:
    position = 0
    for req in requires:
        for i in range(position, len(timeline)):
            if req.matches(timeline[i]):
                position = i + 1
                break
        else:
            return False
    return True


def evaluate(
    policies: Sequence[Policy],
    *,
    callee_app: str,
    caller_app: str | None,
    kind: str,
    name: str,
    operation: str = "schedule",
    timeline: Sequence[TimelineEntry] | None = None,
    signing: bool = False,
) -> Decision:
    """May `caller_app` perform `operation` on workflow/activity `name` of `callee_app`?"""
    governing = [p for p in policies if p.governs(callee_app)]
    if not governing:
        return Decision(True, "no access policy governs this app")
    if caller_app is not None and caller_app == callee_app:
        return Decision(True, "self-call")
    if caller_app is None:
        return Decision(False, "the caller has no verified identity")
    requires_failed = False
    for policy in governing:
        for rule in policy.rules:
            if not any(fnmatch.fnmatchcase(caller_app, c) for c in rule.callers):
                continue
            for target in (rule.workflows if kind == "workflow" else rule.activities):
                if not fnmatch.fnmatchcase(name, target.name) or operation not in target.operations:
                    continue
                if not target.requires:
                    return Decision(True, f"allowed by {policy.name}")
                if signing and timeline is not None and requirements_met(target.requires, timeline):
                    return Decision(True, f"allowed by {policy.name} (requirements met)")
                requires_failed = True
    if requires_failed:
        return Decision(False, "the required prior steps are not in the caller's verified propagated history")
    return Decision(False, f"no rule allows {caller_app} to {operation} {kind} {name}")


@dataclass
class _Snapshot:
    key: tuple[tuple[str, int, int], ...]
    policies: tuple[Policy, ...]
    checked: float = field(default=0.0)


class PolicyStore:
    """The policies of one resources directory, re-read when its files change."""

    def __init__(self, directory: Path | str | None, rescan_seconds: float = RESCAN_SECONDS) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._snapshot = _Snapshot((), ())
        self._scanned = False

    def _key(self) -> tuple[tuple[str, int, int], ...]:
        if self.directory is None or not self.directory.is_dir():
            return ()
        entries = []
        for path in sorted(self.directory.iterdir()):
            if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
                try:
                    st = path.stat()
                except OSError:
                    continue
                entries.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(entries)

    def refresh(self, force: bool = False) -> tuple[Policy, ...]:
        with self._lock:
            now = time.monotonic()
            if self._scanned and not force and now - self._snapshot.checked < self.rescan_seconds:
                return self._snapshot.policies
            key = self._key()
            if not self._scanned or force or key != self._snapshot.key:
                assert self.directory is not None or not key
                policies: list[Policy] = []
                for name, _, _ in key:
                    policies.extend(load_file(self.directory / name))  # type: ignore[operator]
                if self._scanned:
                    log.info("access policies reloaded from %s: %d policy(ies)", self.directory, len(policies))
                self._snapshot = _Snapshot(key, tuple(policies))
            self._snapshot.checked = now
            self._scanned = True
            return self._snapshot.policies

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self.refresh()

    def governs(self, app_id: str) -> bool:
        return any(p.governs(app_id) for p in self.policies)

    def decide(self, **kwargs: Any) -> Decision:
        return evaluate(self.policies, **kwargs)
