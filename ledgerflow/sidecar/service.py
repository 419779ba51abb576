"""The whole `TaskHubSidecarService` for a sidecar app: the client calls of `grpc_api` plus
the worker half its SDK calls, `GetWorkItems` (the stream of work items) and
`CompleteOrchestratorTask` / `CompleteWorkflowTask` / `CompleteActivityTask` (the answers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from ledgerflow.grpc_api import protocol as p
from ledgerflow.grpc_api.service import WorkflowService
from ledgerflow.management import WorkflowManager
from ledgerflow.sidecar.work_items import WorkItems, activity_key, workflow_key

#: What Dapr's SDKs recognise as an answer nobody waits for any more (not an error to report).
_UNKNOWN_TOKEN = "unknown instance id/task id combo: the work item was given to another stream or timed out"


class SidecarService(WorkflowService):
    def __init__(self, manager: WorkflowManager, work: WorkItems) -> None:
        super().__init__(manager)
        self.work = work

    def GetWorkItems(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """The app's stream: its work items until it goes away (its unanswered ones are then
        sent to another stream) or the sidecar ends it."""
        stream = self.work.connect()
        context.add_callback(lambda: self.work.disconnect(stream))
        yield from stream.items()

    def CompleteOrchestratorTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._complete(request, context, workflow_key(request.instanceId))

    def CompleteWorkflowTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._complete(request, context, workflow_key(request.instanceId))

    def CompleteActivityTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._complete(request, context, activity_key(request.instanceId, request.taskId))

    def _complete(self, request: Any, context: grpc.ServicerContext, key: tuple[Any, ...]) -> Any:
        if not self.work.complete(request.completionToken, request, key):
            context.abort(grpc.StatusCode.NOT_FOUND, _UNKNOWN_TOKEN)
        return p.service_pb.CompleteTaskResponse()
