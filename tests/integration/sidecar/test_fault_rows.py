"""Reliability rows for `ledgerflow sidecar` (SC1-SC5), on PostgreSQL and Redis, with Dapr's own
Python SDK as the app (fault_app.py): an SDK stream that drops mid-work-item, an app that never
answers, an app restart, a sidecar killed -9, two sidecars for one app. Each asserts that its
fault happened, then runs the same after-run checker as every other row (nothing appended
twice, nothing lost) and reports its figures."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.checker import Ledger, check_run, status_counts
from tests.fixtures.processes import ManagedProcess, ProcessGroup, wait_for
from tests.integration.sidecar.conftest import PYTHON, REPO, Sidecar, start_sidecar

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("fault_app.py")
WORKFLOWS = 12


def start_app(sidecar: Sidecar, name: str, ledger: Ledger, seconds: float = 0.3) -> ManagedProcess:
    before = sidecar.connections()
    app = sidecar.start_app(name, [PYTHON, str(APP)], REPO, PYTHONPATH=str(REPO), LEDGERFLOW_CHAOS_LEDGER=ledger.path,
                            STEP_SECONDS=str(seconds))
    wait_for(lambda: sidecar.connections() > before, 60, message=f"{name} to connect to {sidecar.name}",
             logs=sidecar.procs)
    return app


def start_workflows(sidecar: Sidecar, count: int = WORKFLOWS) -> list[str]:
    ids = []
    base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/workflows/dapr/chain/start"
    for i in range(count):
        instance_id = f"w{i}-{uuid.uuid4().hex[:6]}"
        response = httpx.post(base, params={"instanceID": instance_id}, json=i * 10, timeout=30)
        assert response.status_code == 202, response.text
        ids.append(instance_id)
    return ids


def wait_all_completed(sidecar: Sidecar, ids: list[str], timeout: float) -> float:
    began = time.monotonic()
    db_url = sidecar.env["LEDGERFLOW_DATABASE_URL"]
    wait_for(lambda: status_counts(db_url, [sidecar.app_id])["COMPLETED"] == len(ids), timeout, interval=0.25,
             message=f"all {len(ids)} workflows COMPLETED", logs=sidecar.procs)
    return round(time.monotonic() - began, 1)


def busy_in(ledger: Ledger, app: ManagedProcess) -> int:
    """Activity executions `app` has started and not finished."""
    started = {r.execution_id for r in ledger.rows("start") if r.pid == app.pid}
    done = {r.execution_id for r in ledger.rows("done") if r.pid == app.pid}
    return len(started - done)


def check(sidecar: Sidecar, ids: list[str], ledger: Ledger, row) -> None:  # type: ignore[no-untyped-def]
    report = check_run(sidecar.env["LEDGERFLOW_DATABASE_URL"], [sidecar.app_id], ids,
                       expected_output={iid: int(iid[1:].split("-")[0]) * 10 + 3 for iid in ids})
    row.figure("checker", report.summary())
    row.figure("duplicate executions", ledger.duplicates())


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(str(tmp_path / "ledger.db"))


@pytest.mark.row("SC1")
def test_sc1_sdk_stream_drops_mid_work_item(sidecar: Sidecar, ledger: Ledger, faults, row) -> None:
    doomed = start_app(sidecar, "app-a", ledger, seconds=1.0)
    start_app(sidecar, "app-b", ledger, seconds=1.0)
    ids = start_workflows(sidecar)
    wait_for(lambda: busy_in(ledger, doomed) > 0, 60, message="app-a to be running an activity", logs=sidecar.procs)
    faults.kill9(doomed, "app-kill9")
    faults.require("app-kill9")
    row.figure("seconds to complete", wait_all_completed(sidecar, ids, 180))
    given_back = sidecar.process.log_text().count("work item(s) given back")
    row.figure("streams lost", given_back)
    check(sidecar, ids, ledger, row)


@pytest.mark.row("SC2")
def test_sc2_an_app_that_never_answers(procs: ProcessGroup, sidecar_env: dict[str, str], ledger: Ledger, faults,
                                       row) -> None:
    sidecar = start_sidecar(procs, f"sc{uuid.uuid4().hex[:8]}", sidecar_env, "sidecar", "--app-timeout", "3")
    silent = start_app(sidecar, "app-a", ledger)
    start_app(sidecar, "app-b", ledger)
    ids = start_workflows(sidecar)
    wait_for(lambda: any(r.pid == silent.pid for r in ledger.rows("start")), 60,
             message="app-a to take work", logs=procs)
    faults.sigstop(silent)
    row.figure("seconds to complete", wait_all_completed(sidecar, ids, 180))
    timeouts = sidecar.process.log_text().count("did not answer within")
    assert timeouts >= 1, "the sidecar never waited out the frozen app: the fault proved nothing"
    row.figure("work items timed out", timeouts)
    faults.sigcont(silent)  # its late answers must change nothing
    time.sleep(2)
    check(sidecar, ids, ledger, row)


@pytest.mark.row("SC3")
def test_sc3_the_app_restarts(sidecar: Sidecar, ledger: Ledger, faults, row) -> None:
    first = start_app(sidecar, "app", ledger, seconds=0.5)
    ids = start_workflows(sidecar)
    wait_for(lambda: busy_in(ledger, first) > 0, 60, message="the app to run an activity", logs=sidecar.procs)
    faults.kill9(first, "app-kill9")
    db_url = sidecar.env["LEDGERFLOW_DATABASE_URL"]
    left = WORKFLOWS - status_counts(db_url, [sidecar.app_id])["COMPLETED"]
    assert left > 0, "every workflow had finished before the app died: the restart proved nothing"
    row.figure("unfinished at the crash", left)
    start_app(sidecar, "app", ledger, seconds=0.5)
    row.figure("seconds to complete after restart", wait_all_completed(sidecar, ids, 180))
    check(sidecar, ids, ledger, row)


@pytest.mark.row("SC4")
def test_sc4_a_sidecar_killed_9_while_another_serves_the_app(sidecar: Sidecar, ledger: Ledger, faults,
                                                            row) -> None:
    other = sidecar.start_another()
    start_app(sidecar, "app-a", ledger, seconds=0.5)
    start_app(other, "app-b", ledger, seconds=0.5)
    ids = start_workflows(other)
    wait_for(lambda: busy_in(ledger, sidecar.procs.by_name("app-a")[-1]) > 0, 60,
             message="work through the sidecar to be killed", logs=sidecar.procs)
    faults.kill9(sidecar.process, "sidecar-kill9")
    row.figure("seconds to complete", wait_all_completed(other, ids, 240))
    check(other, ids, ledger, row)


@pytest.mark.row("SC5")
def test_sc5_two_sidecars_share_one_app(sidecar: Sidecar, ledger: Ledger, row) -> None:
    other = sidecar.start_another()
    start_app(sidecar, "app-a", ledger)
    start_app(other, "app-b", ledger)
    ids = start_workflows(sidecar, 2 * WORKFLOWS)
    row.figure("seconds to complete", wait_all_completed(sidecar, ids, 180))
    steps = [s.process.log_text().count("step: ") for s in (sidecar, other)]
    row.figure("steps per sidecar", steps)
    assert all(steps), f"one sidecar took every step ({steps}): the app was not shared"
    app_pids = {p.pid for p in sidecar.procs.by_name("app-a") + sidecar.procs.by_name("app-b")}
    assert {r.pid for r in ledger.rows("start")} == app_pids, "both apps ran activities"
    check(sidecar, ids, ledger, row)


def test_without_an_app_the_work_waits_for_it(sidecar: Sidecar, ledger: Ledger) -> None:
    """No SDK connected: nothing is stepped or run, nothing is lost; the app connects, all finish."""
    ids = start_workflows(sidecar, 4)
    time.sleep(3)
    db_url = sidecar.env["LEDGERFLOW_DATABASE_URL"]
    assert status_counts(db_url, [sidecar.app_id]) == {"PENDING": 4}
    assert "step: " not in sidecar.process.log_text()
    start_app(sidecar, "app", ledger)
    wait_all_completed(sidecar, ids, 120)
    report = check_run(db_url, [sidecar.app_id], ids,
                       expected_output={iid: int(iid[1:].split("-")[0]) * 10 + 3 for iid in ids})
    assert report.statuses == {"COMPLETED": 4} and ledger.duplicates() == 0
