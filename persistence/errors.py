"""Errors raised by the store.  Each message names the instance and what to do next."""

from __future__ import annotations


class PersistenceError(Exception):
    """Base class of every error the store raises on purpose."""


class InstanceNotFound(PersistenceError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(
            f"workflow instance {instance_id!r} does not exist; "
            "check the instance ID (it may have been purged)"
        )


class InstanceAlreadyExists(PersistenceError):
    def __init__(self, instance_id: str, status: str) -> None:
        self.instance_id = instance_id
        self.status = status
        super().__init__(
            f"workflow instance {instance_id!r} already exists and is {status}; "
            "terminate or purge it first, or use another instance ID"
        )


class InstanceNotTerminal(PersistenceError):
    def __init__(self, instance_id: str, status: str, root_id: str | None = None) -> None:
        self.instance_id = instance_id
        self.status = status
        self.root_id = root_id if root_id is not None else instance_id
        via = "" if self.root_id == instance_id else f" (a descendant of {self.root_id!r})"
        super().__init__(
            f"workflow instance {instance_id!r}{via} is {status}, not COMPLETED, FAILED or "
            "TERMINATED; wait for it to finish or terminate it, then purge again"
        )


class HistoryConflict(PersistenceError):
    """Another writer already appended history at one of these sequence numbers.

    The unique key (instance_id, generation, sequence) refused the write, so history did
    not fork. The step must be abandoned (its transaction is rolled back) and redone from
    the stored state.
    """

    def __init__(self, instance_id: str, generation: int, sequences: list[int]) -> None:
        self.instance_id = instance_id
        self.generation = generation
        self.sequences = sequences
        super().__init__(
            f"workflow instance {instance_id!r} already has history at generation "
            f"{generation}, sequence {sequences[0] if len(sequences) == 1 else sequences}; "
            "another writer got there first: roll this step back and retry it"
        )


class StoreUnavailable(PersistenceError):
    """The database cannot be reached (or is too busy to answer now); retry later."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"the workflow store at {url} is unavailable: {reason}; "
            "check that the database is running and reachable, then retry"
        )
