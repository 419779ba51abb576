"""WorkflowTestEnvironment: the app's workflows on the real engine and step, with time skipping."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import ledgerflow as wf
from ledgerflow.testing import WorkflowTestEnvironment
from tests.unit.testing import app


@pytest.fixture
def env() -> Iterator[WorkflowTestEnvironment]:
    with WorkflowTestEnvironment(app.wfr) as environment:
        yield environment


def output(state: wf.WorkflowState | None) -> Any:
    assert state is not None and state.runtime_status == wf.WorkflowStatus.COMPLETED, state
    return json.loads(state.serialized_output or "null")


def span(started: str, ended: str) -> timedelta:
    return datetime.fromisoformat(ended) - datetime.fromisoformat(started)


def test_a_30_day_timer_completes_at_once_and_the_workflow_sees_the_skipped_time(env) -> None:
    # the wait's timeout bounds the wall time (a timed assertion would fail on a busy machine)
    iid = env.client.schedule_new_workflow(app.monthly)
    started, ended = output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))
    assert timedelta(days=30) <= span(started, ended) < timedelta(days=30, seconds=5)
    assert env.now() >= datetime.fromisoformat(ended).replace(tzinfo=timezone.utc)


def test_a_24_hour_approval_timeout_expires_at_once(env) -> None:
    iid = env.client.schedule_new_workflow(app.approval, input=5.0)
    result = output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))
    assert result["outcome"] == "expired"
    assert timedelta(hours=24) <= span(result["started"], result["ended"]) < timedelta(hours=24, seconds=5)


def test_an_event_raised_right_after_the_start_wins_over_the_timeout(env) -> None:
    """Time skips only while the test waits: the event is in before any timer jumps."""
    charged = len(app.CHARGED)
    iid = env.client.schedule_new_workflow(app.approval, input=7.0)
    env.client.raise_workflow_event(iid, "approval", data={"by": "ann"})
    result = output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))
    assert result["outcome"] == "charged 7.0"
    assert app.CHARGED[charged:] == [7.0]
    assert span(result["started"], result["ended"]) < timedelta(hours=1)


def test_a_mocked_activity_runs_instead_of_the_real_one(env) -> None:
    charged = len(app.CHARGED)
    seen: list[float] = []

    def fake_charge(ctx: wf.WorkflowActivityContext, amount: float) -> str:
        seen.append(amount)
        return f"pretended to charge {amount}"

    env.mock_activity(app.charge, fake_charge)
    iid = env.client.schedule_new_workflow(app.approval, input=9.0)
    env.client.raise_workflow_event(iid, "approval")
    assert output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))["outcome"] == \
        "pretended to charge 9.0"
    assert seen == [9.0] and app.CHARGED[charged:] == []


def test_a_mock_is_named_by_activity_name_and_stays_in_its_environment(env) -> None:
    env.mock_activity("charge", lambda ctx, amount: "by name")
    iid = env.client.schedule_new_workflow(app.approval, input=1.0)
    env.client.raise_workflow_event(iid, "approval")
    assert output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))["outcome"] == "by name"
    assert app.wfr.registry.activity("charge") is app.charge


def test_sleep_fires_each_timer_due_within_it_at_its_own_time(env) -> None:
    iid = env.client.schedule_new_workflow(app.hourly, input=3)
    env.sleep(timedelta(hours=2, minutes=30))
    state = env.client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == wf.WorkflowStatus.RUNNING
    assert state.serialized_custom_status == "2"
    times = output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))
    gaps = [span(a, b) for a, b in zip(times, times[1:])]
    assert len(gaps) == 3 and all(timedelta(hours=1) <= gap < timedelta(hours=1, seconds=5) for gap in gaps)


def test_suspend_resume_and_terminate_work_as_in_production(env) -> None:
    iid = env.client.schedule_new_workflow(app.monthly)
    env.client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    env.client.pause_workflow(iid)
    env.sleep(timedelta(days=31))  # the timer fires while suspended: held until resume
    state = env.client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == wf.WorkflowStatus.SUSPENDED
    env.client.resume_workflow(iid)
    started, ended = output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))
    assert span(started, ended) >= timedelta(days=31)

    doomed = env.client.schedule_new_workflow(app.monthly)
    env.client.terminate_workflow(doomed, output="stopped")
    state = env.client.wait_for_workflow_completion(doomed, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == wf.WorkflowStatus.TERMINATED
    assert state.serialized_output == '"stopped"'


def test_the_async_client_skips_time_too(env) -> None:
    async def run() -> Any:
        iid = await env.aio_client.schedule_new_workflow(app.monthly)
        return await env.aio_client.wait_for_workflow_completion(iid, timeout_in_seconds=10)

    started, ended = output(asyncio.run(run()))
    assert span(started, ended) >= timedelta(days=30)


def test_sleep_gives_up_when_work_never_settles() -> None:
    with WorkflowTestEnvironment(app.wfr, settle_timeout=0.3) as env:
        release = threading.Event()
        env.mock_activity(app.charge, lambda ctx, amount: release.wait(10) and "late")
        iid = env.client.schedule_new_workflow(app.approval, input=2.0)
        env.client.raise_workflow_event(iid, "approval")
        try:
            with pytest.raises(TimeoutError, match="in flight"):
                env.sleep(timedelta(hours=1))
        finally:
            release.set()
        assert output(env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10))["outcome"] == "late"
