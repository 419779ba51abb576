"""A synchronous in-process bus for security tests: several apps' OrchestratorServices over
one database, activities run by the real worker code (`run_activity`), no Celery. Every
message goes through a FIFO queue, so a test drives a multi-app system step by step and
counts exactly which activities ran."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from brokers import wire
from ledgerflow.access import ManagementAccess
from ledgerflow.registration import Registrar
from orchestrator import inbox, ticker
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.engine.serialization import to_json
from orchestrator.service import OrchestratorService, Publisher
from persistence.records import NewInstance, utcnow
from persistence.store import Store
from security import context as sec_context
from security.certs import init_certs
from security.policy import PolicyStore
from workers.activity import run_activity


def security_for(app_id: str, certs_dir: Path | None, resources_dir: Path | None = None,
                 verify_mode: str = "head", key_type: str = "ed25519") -> sec_context.SecurityContext:
    """Signing on when `certs_dir` is given (a cert is issued there if missing)."""
    policies = PolicyStore(resources_dir, rescan_seconds=0) if resources_dir is not None else None
    if certs_dir is None:
        return sec_context.SecurityContext(app_id, policies=policies)
    if not (certs_dir / f"{app_id}.crt").exists():
        init_certs(certs_dir, app_id, key_type=key_type)
    identity, trust = _load(certs_dir, app_id)
    return sec_context.SecurityContext(app_id, identity, trust, policies, verify_mode)


def _load(certs_dir: Path, app_id: str) -> Any:
    from security import crypto

    return (crypto.load_identity(certs_dir / f"{app_id}.crt", certs_dir / f"{app_id}.key"),
            crypto.load_bundle(certs_dir / "ca.crt"))


class _Publisher(Publisher):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def orchestrate(self, app_id: str, instance_ids: Sequence[str]) -> None:
        self.bus.queue.extend(("orchestrate", app_id, instance_id) for instance_id in instance_ids)

    def activity(self, app_id: str, request: wire.ActivityRequest) -> None:
        self.bus.queue.append(("activity", app_id, request))


@dataclass
class Bus:
    store: Store
    services: dict[str, OrchestratorService] = field(default_factory=dict)
    registrars: dict[str, Registrar] = field(default_factory=dict)
    securities: dict[str, sec_context.SecurityContext] = field(default_factory=dict)
    queue: deque[tuple[str, str, Any]] = field(default_factory=deque)
    requests: list[tuple[str, wire.ActivityRequest]] = field(default_factory=list)
    results: list[wire.ResultMessage] = field(default_factory=list)
    #: intercept an activity request before it runs (return None to drop it)
    on_request: Callable[[str, wire.ActivityRequest], wire.ActivityRequest | None] | None = None

    def add_app(self, app_id: str, registrar: Registrar, security: sec_context.SecurityContext) -> OrchestratorService:
        service = OrchestratorService(self.store, registrar.registry, _Publisher(self), app_id, security=security)
        self.services[app_id], self.registrars[app_id], self.securities[app_id] = service, registrar, security
        return service

    def start(self, app_id: str, name: str, input: Any = None, instance_id: str = "wf-1") -> str:
        started = ev.ExecutionStarted(clock.naive_utc(utcnow()), name, to_json(input))
        self.store.create_instance(NewInstance(instance_id, app_id, name, input=to_json(input)),
                                   inbox.message("start", started))
        self.queue.append(("orchestrate", app_id, instance_id))
        return instance_id

    def raise_event(self, instance_id: str, name: str, data: Any = None, app_id: str | None = None) -> None:
        inst = self.store.get_instance(instance_id)
        self.store.enqueue(instance_id, [inbox.unique_message(ev.EventRaised(clock.naive_utc(utcnow()), name,
                                                                            to_json(data)))])
        self.queue.append(("orchestrate", app_id or inst.app_id, instance_id))

    def tick(self, app_id: str, seconds: float = 3600) -> None:
        ticker.tick(self.services[app_id], now=utcnow() + timedelta(seconds=seconds))

    def run(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            kind, app_id, item = self.queue.popleft()
            if kind == "orchestrate":
                if app_id in self.services:
                    self.services[app_id].run_until_idle(item)
                continue
            request = item
            if self.on_request is not None:
                request = self.on_request(app_id, request)
                if request is None:
                    continue
            self.requests.append((app_id, request))
            if app_id not in self.registrars:
                continue  # nobody serves that app
            message = run_activity(self.registrars[app_id].registry, request, self.securities[app_id])
            self.results.append(message)
            self.services[request.app_id].deliver(request.instance_id, message)
        raise AssertionError("the bus did not go idle")

    def read(self, instance_id: str, app_id: str | None = None) -> Any:
        """What a management read sees: raises HistoryTamperedError for a tampered history."""
        inst = self.store.get_instance(instance_id)
        app = app_id or inst.app_id
        access = ManagementAccess(app, self.securities[app])
        access.verify_read(self.store, inst)
        return self.store.get_instance(instance_id)

    def execute(self, sql: str, **params: Any) -> int:
        with self.store.engine.begin() as conn:
            return conn.execute(sa.text(sql), params).rowcount

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))


def failure_of(store: Store, instance_id: str) -> dict[str, Any]:
    inst = store.get_instance(instance_id)
    return json.loads(inst.failure) if inst.failure else {}
