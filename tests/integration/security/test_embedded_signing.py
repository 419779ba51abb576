"""Signing switched on through the environment, in the real embedded runtime (Celery, the
step, the workers, the client): the wiring, not just the parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

import ledgerflow as wf
from ledgerflow.access import HistoryTamperedError
from security import context as sec_context
from security.certs import init_certs
from tests.integration.stacks import Stack, embedded_stack  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def signing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    certs = tmp_path / "certs"
    monkeypatch.setenv("LEDGERFLOW_SIGNING", "on")
    monkeypatch.setenv("LEDGERFLOW_CERTS_DIR", str(certs))
    monkeypatch.setenv("LEDGERFLOW_RESOURCES_DIR", str(tmp_path / "resources"))
    return certs


def test_a_signed_run_reads_back_verified_and_a_tamper_reads_as_an_error(signing_env: Path,
                                                                            embedded_stack: Stack) -> None:
    app_id = embedded_stack.env["LEDGERFLOW_APP_ID"]
    init_certs(signing_env, app_id, key_type="p256")
    sec_context.reset_cache()
    client = embedded_stack.client
    iid = client.schedule_new_workflow("chaining", input="go")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == wf.WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == "go+++"
    engine = sa.create_engine(embedded_stack.env["LEDGERFLOW_DATABASE_URL"])
    with engine.begin() as conn:
        signed, batches = conn.execute(sa.text(
            "SELECT signed, (SELECT count(*) FROM history_signatures WHERE instance_id = :i) FROM instances "
            "WHERE instance_id = :i"), {"i": iid}).one()
        assert signed and batches >= 4
        conn.execute(sa.text("UPDATE history_events SET payload = replace(payload, 'go+', 'go-') "
                             "WHERE instance_id = :i"), {"i": iid})
    engine.dispose()
    with pytest.raises(HistoryTamperedError, match="digest"):
        client.get_workflow_state(iid)
