"""The broker between the app's SDK streams and the sidecar's steps: round robin, answers by
completion token, lost streams and silent apps give the work back."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ledgerflow.sidecar.work_items import AppTimeout, NoAppConnected, StreamLost, WorkItems, activity_key


def answer_next(work: WorkItems, stream: Any, answer: Any = "done") -> threading.Thread:
    """An "SDK" on `stream` that answers the next work item it receives."""

    def run() -> None:
        token = next(stream.items())
        work.complete(token, answer, ("k",))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_work_item_is_answered_through_its_completion_token() -> None:
    work = WorkItems()
    stream = work.connect()
    answer_next(work, stream, "result")
    assert work.call(lambda token: token, timeout=5, what="w", key=("k",)) == "result"


def test_work_goes_to_the_stream_with_the_fewest_unanswered_items() -> None:
    """Orchestrator and activity work items interleave: plain turns could send every activity
    to one stream; the least busy stream takes the next item, whatever its kind."""
    work = WorkItems()
    busy, idle = work.connect(), work.connect()
    waiting = threading.Thread(target=lambda: work.call(lambda token: token, timeout=5, what="w", key=("a",)),
                               daemon=True)
    waiting.start()
    deadline = time.monotonic() + 5
    while busy.pending + idle.pending == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    loaded = busy if busy.pending else idle
    first = next(loaded.items())
    other = idle if loaded is busy else busy
    for n in range(3):  # each goes to the stream without work, and is answered there
        answer_next(work, other, n)
        assert work.call(lambda token: token, timeout=5, what="w", key=("b", n)) == n
    assert loaded.pending == 1
    work.complete(first, "done", ("a",))
    waiting.join(5)
    assert loaded.pending == other.pending == 0


def test_no_connected_app_leaves_the_work_to_the_caller() -> None:
    with pytest.raises(NoAppConnected, match="wf-7: no app is connected"):
        WorkItems().call(lambda token: token, timeout=5, what="wf-7", key=("k",))


def test_a_stream_that_goes_away_gives_its_work_back() -> None:
    work = WorkItems()
    stream = work.connect()
    threading.Timer(0.1, work.disconnect, args=(stream,)).start()
    with pytest.raises(StreamLost):
        work.call(lambda token: token, timeout=5, what="w", key=("k",))
    assert work.connected == 0


def test_an_app_that_does_not_answer_loses_its_stream_and_a_late_answer_is_refused() -> None:
    work = WorkItems()
    stream = work.connect()
    sent: list[str] = []
    with pytest.raises(AppTimeout, match="did not answer within 0.2 s"):
        work.call(lambda token: sent.append(token) or token, timeout=0.2, what="w", key=("k",))
    assert work.connected == 0 and not stream.open
    assert work.complete(sent[0], "late", ("k",)) is False


def test_the_first_connection_calls_on_connect_once() -> None:
    calls = []
    work = WorkItems(on_connect=lambda: calls.append(1))
    first = work.connect()
    work.connect()
    work.disconnect(first)
    assert calls == [1]
    assert work.wait_connected(0.01)
    work.close()
    assert not work.wait_connected(0.01)


def test_an_answer_without_the_token_is_matched_by_the_works_key() -> None:
    """Dapr's JavaScript SDK answers with the instance (and task) ID only."""
    work = WorkItems()
    stream = work.connect()

    def sdk() -> None:
        next(stream.items())
        work.complete("", "by key", activity_key("i1", 3))

    threading.Thread(target=sdk, daemon=True).start()
    assert work.call(lambda token: token, timeout=5, what="w", key=activity_key("i1", 3)) == "by key"
    assert work.complete("", "again", activity_key("i1", 3)) is False
