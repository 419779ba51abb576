"""Async face of the client: the same calls and keyword arguments as the sync client, run
off the event loop in worker threads (the database drivers are blocking).

Waiting is woken by change notifications like the sync client's; cancelling an awaiting
task (or `asyncio.wait_for` timing out) stops the waiting thread too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledgerflow import changes
from ledgerflow.client import DaprWorkflowClient as _SyncClient
from ledgerflow.client import finished, started
from ledgerflow.state import WorkflowState


class DaprWorkflowClient:
    def __init__(self, host: str | None = None, port: str | None = None, logger_options: Any = None,
                 **kwargs: Any) -> None:
        self._sync = _SyncClient(host, port, logger_options, **kwargs)

    async def schedule_new_workflow(self, workflow: Callable[..., Any] | str, *, input: Any = None,
                                    instance_id: str | None = None, start_at: datetime | None = None,
                                    reuse_id_policy: Any = None) -> str:
        return await asyncio.to_thread(self._sync.schedule_new_workflow, workflow, input=input,
                                       instance_id=instance_id, start_at=start_at, reuse_id_policy=reuse_id_policy)

    async def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True) -> WorkflowState | None:
        return await asyncio.to_thread(self._sync.get_workflow_state, instance_id, fetch_payloads=fetch_payloads)

    async def wait_for_workflow_start(self, instance_id: str, *, fetch_payloads: bool = False,
                                      timeout_in_seconds: int = 0) -> WorkflowState | None:
        return await self._wait(instance_id, started, timeout_in_seconds, fetch_payloads, "start")

    async def wait_for_workflow_completion(self, instance_id: str, *, fetch_payloads: bool = True,
                                           timeout_in_seconds: int = 0) -> WorkflowState | None:
        return await self._wait(instance_id, finished, timeout_in_seconds, fetch_payloads, "complete")

    async def _wait(self, instance_id: str, done: Callable[[WorkflowState], bool], timeout: float,
                    fetch_payloads: bool, what: str) -> WorkflowState | None:
        cancel = threading.Event()
        manager = self._sync._manager
        try:
            return await asyncio.to_thread(manager.wait, instance_id, done, timeout, fetch_payloads, what,
                                           cancel=cancel)
        except asyncio.CancelledError:
            cancel.set()
            changes.WATCHES.notify(instance_id)  # the thread sees `cancel` now, not at its next wake
            raise

    async def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        await asyncio.to_thread(self._sync.raise_workflow_event, instance_id, event_name, data=data)

    async def terminate_workflow(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        await asyncio.to_thread(self._sync.terminate_workflow, instance_id, output=output, recursive=recursive)

    async def pause_workflow(self, instance_id: str) -> None:
        await asyncio.to_thread(self._sync.pause_workflow, instance_id)

    async def resume_workflow(self, instance_id: str) -> None:
        await asyncio.to_thread(self._sync.resume_workflow, instance_id)

    async def purge_workflow(self, instance_id: str, recursive: bool = True) -> None:
        await asyncio.to_thread(self._sync.purge_workflow, instance_id, recursive=recursive)

    async def rerun_workflow_from_event(self, instance_id: str, event_id: int, *, new_instance_id: str | None = None,
                                        input: Any = None) -> str:
        return await asyncio.to_thread(self._sync.rerun_workflow_from_event, instance_id, event_id,
                                       new_instance_id=new_instance_id, input=input)

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> DaprWorkflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
