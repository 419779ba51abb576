"""Turning a step's actions into rows written in the step's own transaction.

Timers become timer rows, activity calls and wake-ups become outbox rows (published after
commit), children become instance rows with their first inbox message, and reports to a
parent or terminations of children become inbox messages of those instances. All of it
commits with the history the step appends, or none of it does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from brokers import wire
from orchestrator import inbox
from orchestrator.engine import actions as act
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.engine.status import COMPLETED, CONTINUED_AS_NEW, FAILED, RUNNING, TERMINATED
from orchestrator.guard import StepHooks
from persistence import errors as store_errors
from persistence.records import (
    OUTBOX_ACTIVITY,
    OUTBOX_ORCHESTRATE,
    InstanceRecord,
    NewInboxMessage,
    NewInstance,
    NewOutbox,
    NewTimer,
    as_utc,
)
from persistence.step import StepTx
from telemetry import tracing


def orchestrate_row(app_id: str, instance_id: str) -> NewOutbox:
    return NewOutbox(app_id=app_id, kind=OUTBOX_ORCHESTRATE, payload=json.dumps({"instance_id": instance_id}),
                     instance_id=instance_id)


def failure_json(failure: ev.FailureDetails | None) -> str | None:
    if failure is None:
        return None
    return json.dumps({"message": failure.message, "error_type": failure.error_type, "stack_trace": failure.stack_trace})


@dataclass
class Effects:
    """What one step writes besides history; `outbox` is published after commit."""

    tx: StepTx
    instance: InstanceRecord
    now: datetime
    pools: dict[str, str]
    #: attestations and propagated history (no-ops with signing off and no policies)
    hooks: StepHooks
    outbox: list[NewOutbox] = field(default_factory=list)

    @property
    def naive_now(self) -> datetime:
        return clock.naive_utc(self.now)

    @property
    def run_trace(self) -> tracing.Parent | None:
        """The `orchestration:{name}` span of this run, when the instance has a trace."""
        inst = self.instance
        if inst.trace_context is None:
            return None
        return tracing.run_parent(inst.trace_context, inst.instance_id, inbox.run_token(inst), inst.generation)

    def apply(self, action: act.Action) -> None:
        handler = {
            act.ScheduleTask: self._schedule_task,
            act.CreateTimer: self._create_timer,
            act.CreateSubOrchestration: self._create_child,
            act.TerminateSubOrchestration: self._terminate_child,
            act.CompleteOrchestration: self._complete,
        }[type(action)]
        handler(action)

    def _schedule_task(self, a: act.ScheduleTask) -> None:
        inst = self.instance
        target_app = a.app_id or inst.app_id
        run = inbox.run_token(inst)
        trace = self.run_trace
        request = wire.ActivityRequest(
            instance_id=inst.instance_id, app_id=inst.app_id, target_app_id=target_app,
            pool=self.pools.get(a.name) if target_app == inst.app_id else None, generation=inst.generation,
            run=run, task_id=a.task_id, name=a.name, input=a.input,
            execution_id=f"{inst.instance_id}:{run}:{inst.generation}:{a.first_task_id}", attempt=a.attempt,
            # the worker's span is a child of this call's client span
            traceparent=tracing.activity_parent(trace, a.task_id).text if trace is not None else None)
        request = self.hooks.activity_request(a, request)
        self.outbox.append(NewOutbox(app_id=target_app, kind=OUTBOX_ACTIVITY, payload=json.dumps(request.to_wire()),
                                     instance_id=inst.instance_id,
                                     dedup_key=wire.task_message_id(inst.generation, a.task_id)))

    def _message(self, target_instance_id: str, message_id: str, event: ev.HistoryEvent) -> NewInboxMessage:
        """A result for another instance (or this one), attested when signing is on."""
        return self.hooks.message(target_instance_id, message_id, event)

    def _create_timer(self, a: act.CreateTimer) -> None:
        self.tx.add_timers([NewTimer(timer_id=a.timer_id, fire_at=as_utc(a.fire_at))])

    def _create_child(self, a: act.CreateSubOrchestration) -> None:
        inst = self.instance
        child_app = a.app_id or inst.app_id
        parent = ev.ParentInfo(inst.name, inst.instance_id, a.task_id, inst.app_id)
        started = ev.ExecutionStarted(self.naive_now, a.name, a.input, parent)
        started = self.hooks.child_started(a.instance_id, a, started)
        run = self.run_trace
        new = NewInstance(instance_id=a.instance_id, app_id=child_app, name=a.name, input=a.input,
                          parent_instance_id=inst.instance_id, parent_app_id=inst.app_id, parent_task_id=a.task_id,
                          trace_context=run.text if run is not None else None)
        try:
            self.tx.create_instance(new, inbox.message("start", started))
        except store_errors.InstanceAlreadyExists as exc:
            failure = ev.FailureDetails(str(exc), "InstanceAlreadyExists")
            failed = ev.SubOrchestrationInstanceFailed(self.naive_now, a.task_id, failure)
            self.tx.enqueue(inst.instance_id, [self._message(inst.instance_id, f"msg:{uuid.uuid4().hex}", failed)])
            self.outbox.append(orchestrate_row(inst.app_id, inst.instance_id))
            return
        self.outbox.append(orchestrate_row(child_app, a.instance_id))

    def _terminate_child(self, a: act.TerminateSubOrchestration) -> None:
        terminated = ev.ExecutionTerminated(self.naive_now, a.output, True)
        try:
            self.tx.enqueue(a.instance_id, [inbox.unique_message(terminated)])
        except store_errors.InstanceNotFound:
            return
        self.outbox.append(orchestrate_row(a.app_id or self.instance.app_id, a.instance_id))

    def _complete(self, a: act.CompleteOrchestration) -> None:
        if a.status == CONTINUED_AS_NEW:
            self._continue_as_new(a)
            return
        self.outbox += finish_run(self.tx, self.instance, a, self.now, self.hooks)

    def _continue_as_new(self, a: act.CompleteOrchestration) -> None:
        inst = self.tx.start_new_generation(a.result)
        self.instance = inst
        started = ev.ExecutionStarted(self.naive_now, inst.name, a.result, a.parent, propagated=a.propagated)
        gen = inst.generation
        messages = [inbox.message(f"start:{gen}", started)]
        messages += [inbox.message(f"carry:{gen}:{i}", e) for i, e in enumerate(a.carryover_events)]
        self.tx.enqueue(inst.instance_id, messages)
        self.outbox.append(orchestrate_row(inst.app_id, inst.instance_id))



def finish_run(tx: StepTx, inst: InstanceRecord, completion: act.CompleteOrchestration, now: datetime,
               hooks: StepHooks) -> list[NewOutbox]:
    """What ending a run writes besides its last event and status, however it ends (the
    engine's completions and the service's forced endings alike): its timers and open
    activity calls are cancelled and its parent, if any, gets the outcome. Returns the
    parent's wake-up."""
    tx.delete_timers()
    tx.delete_outbox_kind(OUTBOX_ACTIVITY)
    parent = completion.parent
    if parent is None:
        return []
    naive = clock.naive_utc(now)
    report: ev.HistoryEvent
    if completion.status == COMPLETED:
        report = ev.SubOrchestrationInstanceCompleted(naive, parent.task_id, completion.result)
    else:
        failure = completion.failure if completion.status == FAILED else ev.FailureDetails(
            f"Child workflow '{inst.instance_id}' was terminated.", "WorkflowTerminated")
        report = ev.SubOrchestrationInstanceFailed(naive, parent.task_id, failure)
    message_id = wire.child_message_id(parent.task_id, inst.instance_id, inbox.run_token(inst))
    try:
        tx.enqueue(parent.instance_id, [hooks.message(parent.instance_id, message_id, report)])
    except store_errors.InstanceNotFound:
        return []  # the parent was purged; nobody is waiting
    return [orchestrate_row(parent.app_id or inst.app_id, parent.instance_id)]


def completion_fields(a: act.CompleteOrchestration) -> dict[str, object]:
    """Instance columns a completion sets."""
    if a.status == CONTINUED_AS_NEW:
        return {"status": RUNNING}
    fields: dict[str, object] = {"status": a.status, "failure": failure_json(a.failure)}
    if a.status in (COMPLETED, TERMINATED):
        fields["output"] = a.result
    return fields
