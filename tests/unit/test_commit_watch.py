"""The SQLite commit watcher behind `ledgerflow dev`'s cross-process wake-up: a commit by
another connection wakes each instance with a new inbox message once, within a poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.commit_watch import CommitWatcher
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager


class Woken:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.changed = threading.Condition()

    def __call__(self, ids: list[str]) -> None:
        with self.changed:
            self.calls.append(ids)
            self.changed.notify_all()

    def next(self, timeout: float = 2.0) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: self.calls, timeout), "no wake-up"
            return self.calls.pop(0)


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowManager]:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'a dir #1' / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "watched")
    m = WorkflowManager(Settings.from_env())
    m.store.migrate()
    yield m
    m.close()


def test_each_new_inbox_message_wakes_its_instance_once(manager: WorkflowManager) -> None:
    woken = Woken()
    watcher = CommitWatcher(str(manager.settings.sqlite_path), "watched", woken, interval=0.005)
    watcher.start()
    try:
        time.sleep(0.05)
        began = time.monotonic()
        manager.schedule("wf", instance_id="w-1")
        assert woken.next() == ["w-1"]
        assert time.monotonic() - began < 1.0  # at the watcher's next look (5 ms), on a busy machine too
        manager.schedule("wf", instance_id="other", app_id="another-app")  # a commit, not this app's
        with manager.store.step("w-1") as tx:
            tx.update_instance(status="RUNNING")  # a commit, no new message
        time.sleep(0.1)
        assert woken.calls == []
        manager.raise_event("w-1", "go", 1)
        assert woken.next() == ["w-1"]
    finally:
        watcher.stop()
