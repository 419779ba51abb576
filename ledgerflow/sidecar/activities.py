"""Activity calls of a sidecar app, forwarded to its SDK.

The calls reach the sidecar as Ledgerflow's activity tasks on `ledgerflow.<app>.activities`
(`workers.tasks`, with its holds, limits and delivery cap); instead of a registered function,
`ActivityForwarder` sends each to a connected SDK as an activity work item and turns the
answer into the result message the workers deliver (after the same checks: the delivery cap,
the propagated history, this app's access policies, `workers.activity.screen`). With no SDK
connected, or when the SDK goes away or does not answer, the call goes back to its queue (rejected with requeue), for
this sidecar or another one to forward again: a call is never lost or answered twice.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Reject

from brokers import wire
from ledgerflow.grpc_api import protocol as p
from ledgerflow.sidecar.work_items import AppTimeout, NoAppConnected, StreamLost, WorkItems, activity_key
from orchestrator.engine import events as ev
from workers import activity


class ActivityForwarder:
    """`workers.tasks.ActivityRunner` for a sidecar app. `timeout` bounds both the wait for a
    connected SDK and the wait for its answer (seconds)."""

    def __init__(self, work: WorkItems, timeout: float) -> None:
        self.work = work
        self.timeout = timeout

    def __call__(self, request: wire.ActivityRequest, *, app_id: str | None, refuse: ev.FailureDetails | None = None,
                 config: activity.ActivityConfig = activity.DEFAULTS) -> wire.ResultMessage:
        task_id = request.task_id
        refused, security, _ = activity.screen(request, app_id=app_id, refuse=refuse, config=config)
        if refused is not None:
            return refused
        what = f"activity '{request.name}' (task {task_id} of {request.instance_id})"
        if not self.work.wait_connected(self.timeout):
            raise Reject(f"{what}: no app connected; back to the queue", requeue=True)
        item = p.service_pb.ActivityRequest(
            name=request.name, input=p.text(request.input), taskId=task_id,
            workflowInstance=p.orchestration_pb.WorkflowInstance(instanceId=request.instance_id),
            taskExecutionId=request.execution_id)
        try:
            answer = self.work.call(lambda token: p.service_pb.WorkItem(activityRequest=item, completionToken=token),
                                    self.timeout, what, activity_key(request.instance_id, task_id))
        except (NoAppConnected, StreamLost, AppTimeout) as exc:
            raise Reject(str(exc), requeue=True) from None
        return activity.result_message(request, _event(answer, task_id), security, app_id=app_id, config=config)


def _event(answer: Any, task_id: int) -> ev.HistoryEvent:
    now = activity.wall_clock()
    if answer.HasField("failureDetails"):
        f = answer.failureDetails
        failure = ev.FailureDetails(f.errorMessage, f.errorType or "Exception", p.optional_text(f, "stackTrace"))
        return ev.TaskFailed(now, task_id, failure)
    return ev.TaskCompleted(now, task_id, p.optional_text(answer, "result"))
