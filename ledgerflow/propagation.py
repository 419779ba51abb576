"""History propagation types (Dapr 1.18): what a caller passes down to what it calls.

The types live in the engine (`orchestrator.engine.propagation`, standard library only) so
that workflow contexts and activity workers can build them; this module is the public name.
"""

from __future__ import annotations

from orchestrator.engine.propagation import (
    ActivityResult,
    ChildWorkflowResult,
    PropagatedHistory,
    PropagationNotFoundError,
    PropagationScope,
    WorkflowResult,
)

__all__ = [
    "ActivityResult",
    "ChildWorkflowResult",
    "PropagatedHistory",
    "PropagationNotFoundError",
    "PropagationScope",
    "WorkflowResult",
]
