"""Testing workflows: replay recorded histories against new code (`Replayer`), and run
workflows on the real engine with a clock that skips ahead (`WorkflowTestEnvironment`)."""

from ledgerflow.testing.environment import WorkflowTestEnvironment
from ledgerflow.testing.histories import HistoryFormatError, RecordedHistory
from ledgerflow.testing.replayer import Replayer, ReplayFailure, ReplayResult

__all__ = ["HistoryFormatError", "RecordedHistory", "Replayer", "ReplayFailure", "ReplayResult",
           "WorkflowTestEnvironment"]
