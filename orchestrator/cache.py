"""The in-process cache of live workflow generators.

A warm step feeds only the new events to the kept `Replay` instead of replaying the whole
history, so a workflow of n steps costs O(n), not O(n^2). Correctness never depends on
it: an entry is used only when the instance row still shows the run, generation and step
counter this process left it at, so a step taken by any other process is a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from orchestrator.engine.executor import Replay


@dataclass(frozen=True, slots=True)
class CacheKey:
    created_at: datetime
    generation: int
    step_count: int


class ReplayCache:
    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[CacheKey, Replay]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def take(self, instance_id: str, key: CacheKey) -> Replay | None:
        """The cached replay if it is exactly at `key`; it is removed either way, so a
        step that fails half-way can never leave a replay ahead of the database."""
        with self._lock:
            entry = self._entries.pop(instance_id, None)
            if entry is not None and entry[0] == key:
                self.hits += 1
                return entry[1]
            self.misses += 1
            return None

    def holds(self, instance_id: str, key: CacheKey) -> bool:
        """Whether `take` would return a replay now (it does not count as a hit or miss)."""
        with self._lock:
            entry = self._entries.get(instance_id)
            return entry is not None and entry[0] == key

    def discard(self, instance_id: str) -> None:
        with self._lock:
            self._entries.pop(instance_id, None)

    def put(self, instance_id: str, key: CacheKey, replay: Replay) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[instance_id] = (key, replay)
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
