"""Batching deliveries per instance inside one orchestrator process (fan-in).

While a thread of this process steps an instance, other threads delivering results to it
only enqueue them and leave; the stepping thread's next step takes them all at once. Across
processes the row lock still serialises steps; correctness never depends on this (every
message is in the inbox, and the reconcile tick wakes any inbox left behind).
"""

from __future__ import annotations

import threading


class Stepping:
    """Which instances a thread of this process is stepping, and which got messages meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._deferred: set[str] = set()

    def claim(self, instance_id: str) -> bool:
        """Take the instance if no other thread steps it."""
        with self._lock:
            if instance_id in self._busy:
                return False
            self._busy.add(instance_id)
            return True

    def claim_or_defer(self, instance_id: str) -> bool:
        """Take the instance, or (another thread steps it) tell that thread to step once more."""
        with self._lock:
            if instance_id in self._busy:
                self._deferred.add(instance_id)
                return False
            self._busy.add(instance_id)
            return True

    def release_unless_deferred(self, instance_id: str) -> bool:
        """Let go, unless messages were deferred to this thread meanwhile (then keep it: False)."""
        with self._lock:
            if instance_id in self._deferred:
                self._deferred.discard(instance_id)
                return False
            self._busy.discard(instance_id)
            return True

    def release(self, instance_id: str) -> None:
        with self._lock:
            self._busy.discard(instance_id)
            self._deferred.discard(instance_id)
