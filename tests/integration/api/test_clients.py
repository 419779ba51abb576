"""The async client (`ledgerflow.aio.DaprWorkflowClient`) has the sync client's methods,
keyword arguments and behaviour: the same scenario run through both gives the same results."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

import pytest

import ledgerflow as wf
import ledgerflow.aio
from ledgerflow import changes, errors
from tests.integration.stacks import embedded_stack  # noqa: F401  (a fixture)

PUBLIC = [name for name, _ in inspect.getmembers(wf.DaprWorkflowClient, inspect.isfunction)
          if not name.startswith("_")]


def test_the_async_client_has_every_method_with_the_same_signature() -> None:
    assert set(PUBLIC) >= {"schedule_new_workflow", "get_workflow_state", "wait_for_workflow_start",
                           "wait_for_workflow_completion", "raise_workflow_event", "terminate_workflow",
                           "pause_workflow", "resume_workflow", "purge_workflow", "close"}
    for name in PUBLIC:
        sync, async_ = getattr(wf.DaprWorkflowClient, name), getattr(ledgerflow.aio.DaprWorkflowClient, name)
        assert inspect.iscoroutinefunction(async_), name
        params = [(p.name, p.kind, p.default) for p in inspect.signature(sync).parameters.values()]
        assert params == [(p.name, p.kind, p.default) for p in inspect.signature(async_).parameters.values()], name
    init_sync = inspect.signature(wf.DaprWorkflowClient.__init__).parameters
    init_async = inspect.signature(ledgerflow.aio.DaprWorkflowClient.__init__).parameters
    assert list(init_async)[:4] == list(init_sync)[:4] == ["self", "host", "port", "logger_options"]


class SyncFace:
    """The sync client behind the async interface, so one scenario drives both."""

    def __init__(self, client: wf.DaprWorkflowClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


async def scenario(c: Any, tag: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    iid = await c.schedule_new_workflow("approval", input=30, instance_id=f"{tag}-approval")
    seen["started"] = (await c.wait_for_workflow_start(iid, timeout_in_seconds=30)).runtime_status.name
    state = await c.get_workflow_state(iid)
    seen["custom"] = state.serialized_custom_status
    await c.pause_workflow(iid)
    seen["paused"] = (await c.get_workflow_state(iid)).runtime_status.name
    await c.resume_workflow(iid)
    seen["resumed"] = (await c.get_workflow_state(iid)).runtime_status.name
    await c.raise_workflow_event(iid, "approval", data={"by": tag[:0] + "ops"})
    done = await c.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    seen["done"] = (done.runtime_status.name, done.serialized_output)
    waiter = await c.schedule_new_workflow("waiter", instance_id=f"{tag}-waiter")
    await c.wait_for_workflow_start(waiter, timeout_in_seconds=30)
    await c.raise_workflow_event(waiter, "go", data=0)  # falsy data arrives as None
    seen["falsy"] = (await c.wait_for_workflow_completion(waiter, timeout_in_seconds=30)).serialized_output
    stuck = await c.schedule_new_workflow("waiter", instance_id=f"{tag}-stuck")
    await c.wait_for_workflow_start(stuck, timeout_in_seconds=30)
    try:
        await c.wait_for_workflow_completion(stuck, timeout_in_seconds=0.3)
    except TimeoutError as exc:
        seen["timeout"] = str(exc)
    await c.terminate_workflow(stuck, output="stopped")
    end = await c.wait_for_workflow_completion(stuck, timeout_in_seconds=30)
    seen["terminated"] = (end.runtime_status.name, end.serialized_output)
    await c.purge_workflow(iid)
    seen["purged"] = await c.get_workflow_state(iid)
    seen["unknown"] = await c.get_workflow_state(f"{tag}-nope")
    try:
        await c.raise_workflow_event(f"{tag}-nope", "x")
    except errors.InstanceNotFoundError as exc:
        seen["not_found"] = type(exc).__name__
    return seen


def test_the_same_scenario_gives_the_same_results_through_both_clients(embedded_stack) -> None:  # noqa: F811
    with_sync = asyncio.run(scenario(SyncFace(embedded_stack.client), "s"))

    async def run_async() -> dict[str, Any]:
        async with ledgerflow.aio.DaprWorkflowClient() as client:
            return await scenario(client, "a")

    with_async = asyncio.run(run_async())
    assert with_sync == with_async
    assert with_async == {
        "started": "RUNNING", "custom": '"waiting for approval"', "paused": "SUSPENDED", "resumed": "RUNNING",
        "done": ("COMPLETED", '"approved by ops"'), "falsy": None,
        "timeout": "Timed-out waiting for the orchestration to complete",
        "terminated": ("TERMINATED", '"stopped"'), "purged": None, "unknown": None,
        "not_found": "InstanceNotFoundError",
    }


def test_cancelling_an_async_wait_stops_its_thread(embedded_stack) -> None:  # noqa: F811
    iid = embedded_stack.client.schedule_new_workflow("waiter", instance_id="cancel-me")

    async def go() -> None:
        async with ledgerflow.aio.DaprWorkflowClient() as client:
            await client.wait_for_workflow_start(iid, timeout_in_seconds=30)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.wait_for_workflow_completion(iid), 0.3)

    # The embedded worker's own threads (its batch timer among them) exist once it has run a step.
    embedded_stack.client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    before = threading.active_count()
    asyncio.run(go())
    deadline = time.monotonic() + 3
    while iid in changes.WATCHES._watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert iid not in changes.WATCHES._watches  # nobody waits for it any more
    assert threading.active_count() <= before + 1
