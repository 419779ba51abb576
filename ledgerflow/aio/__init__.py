"""The async DaprWorkflowClient (`from ledgerflow.aio import DaprWorkflowClient`)."""

from ledgerflow.aio.client import DaprWorkflowClient

__all__ = ["DaprWorkflowClient"]
