"""What a log line about one instance carries in its `extra` (a module of its own so that
the step, the guard and the redelivery filter can all import it without a cycle)."""

from __future__ import annotations

from typing import Any

from persistence.records import InstanceRecord


def log_ids(inst: InstanceRecord) -> dict[str, Any]:
    """The `extra` of a log line about this instance (JSON lines name its trace too)."""
    ids = {"instance_id": inst.instance_id, "workflow": inst.name, "app_id": inst.app_id}
    if inst.trace_context is not None:
        ids["trace_id"] = inst.trace_context[3:35]
    return ids
