"""The in-process runtime of `ledgerflow sidecar`: `WorkflowRuntime`'s orchestrator, activity
consumer and timer loop for one app, whose workflows and activities run in the app's own SDK.

Steps replay remotely (`RemoteReplay`), activity calls are forwarded (`ActivityForwarder`),
everything else is Ledgerflow's own: the store, the queues, timers, leases, signing, limits.
When the first SDK connects, every unfinished instance of the app is woken; while none is
connected the timer/reconcile loop rests, and the work stays in the inboxes and queues.
"""

from __future__ import annotations

import logging
from typing import Any

from ledgerflow.runtime import WorkflowRuntime
from ledgerflow.sidecar.activities import ActivityForwarder
from ledgerflow.sidecar.replay import RemoteReplay
from ledgerflow.sidecar.work_items import WorkItems

log = logging.getLogger("ledgerflow.sidecar")

#: Seconds the sidecar waits for the app's answer to one work item, by default.
DEFAULT_APP_TIMEOUT = 30.0
#: Work items served at once (each waiting step or activity call holds a thread).
CONCURRENCY = 16


class SidecarRuntime(WorkflowRuntime):
    def __init__(self, app_id: str, app_timeout: float = DEFAULT_APP_TIMEOUT) -> None:
        super().__init__(app_id=app_id, maximum_thread_pool_workers=CONCURRENCY)
        self.work = WorkItems(on_connect=self._app_connected)
        self.app_timeout = app_timeout
        self._activity_runner = ActivityForwarder(self.work, app_timeout)

    def _replays(self, registry: Any, instance_id: str) -> RemoteReplay:  # type: ignore[override]
        return RemoteReplay(self.work, instance_id, self.app_timeout)

    def _ticking(self) -> bool:
        return self.work.connected > 0

    def _app_connected(self) -> None:
        service = self.service
        if service is not None:
            count = self.redrive(service)
            log.info("app connected: %d unfinished instance(s) woken", count)

    def shutdown(self) -> None:
        self.work.close()
        super().shutdown()
