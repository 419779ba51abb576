"""Every route and every error code of the HTTP API, in-process (Starlette's TestClient) over
a fresh SQLite database. No workflow runs here: states are set in the store directly."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from ledgerflow.api import ApiSettings, create_app
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence import schema
from persistence.records import NewEvent, NewInstance, as_utc

pytestmark = pytest.mark.filterwarnings("ignore:.*httpx.*:Warning")

VERSIONS = ["/v1.0", "/v1.0-beta1", "/v1.0-alpha1"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")


def set_state(manager: WorkflowManager, instance_id: str, **fields: Any) -> None:
    with manager.store.step(instance_id) as tx:
        tx.update_instance(**fields)


def start(api: Any, name: str = "wf", instance_id: str | None = None, body: bytes = b"", prefix: str = "/v1.0",
          app: str | None = None) -> Any:
    query = "&".join(q for q in (f"instanceID={instance_id}" if instance_id else "", f"appID={app}" if app else "") if q)
    return api.post(f"{prefix}/workflows/dapr/{name}/start" + (f"?{query}" if query else ""), content=body)


# -- Dapr's routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", VERSIONS)
def test_start_then_get_has_daprs_shape_under_every_version(api, prefix) -> None:
    r = start(api, "OrderProcessingWorkflow", "order-1", b'{"Name": "Paperclips", "TotalCost": 9.95}', prefix)
    assert r.status_code == 202
    assert r.json() == {"instanceID": "order-1"}
    assert r.headers["location"] == f"{prefix}/workflows/dapr/order-1"
    got = api.get(f"{prefix}/workflows/dapr/order-1")
    assert got.status_code == 200
    body = got.json()
    assert list(body) == ["instanceID", "workflowName", "createdAt", "lastUpdatedAt", "runtimeStatus", "properties"]
    assert body["instanceID"] == "order-1" and body["workflowName"] == "OrderProcessingWorkflow"
    assert body["runtimeStatus"] == "PENDING"
    assert RFC3339_UTC.match(body["createdAt"]) and RFC3339_UTC.match(body["lastUpdatedAt"])
    assert body["properties"] == {"dapr.workflow.input": '{"Name": "Paperclips", "TotalCost": 9.95}'}


def test_start_without_id_or_body_generates_an_id_and_records_no_input(api) -> None:
    r = start(api)
    assert r.status_code == 202
    iid = r.json()["instanceID"]
    assert re.fullmatch(r"[0-9a-f]{32}", iid)
    assert api.get(f"/v1.0/workflows/dapr/{iid}").json()["properties"] == {}


def test_properties_appear_only_with_values_and_output_only_when_not_failed(api, manager) -> None:
    start(api, instance_id="done", body=b"1")
    set_state(manager, "done", status="COMPLETED", output='"ok"', custom_status='{"stage": 2}')
    assert api.get("/v1.0/workflows/dapr/done").json()["properties"] == {
        "dapr.workflow.input": "1", "dapr.workflow.custom_status": '{"stage": 2}', "dapr.workflow.output": '"ok"'}
    start(api, instance_id="bad")
    failure = json.dumps({"message": "no stock", "error_type": "ValueError", "stack_trace": None})
    set_state(manager, "bad", status="FAILED", output='"ignored"', failure=failure)
    body = api.get("/v1.0/workflows/dapr/bad").json()
    assert body["runtimeStatus"] == "FAILED"
    assert body["properties"] == {"dapr.workflow.failure.error_type": "ValueError",
                                  "dapr.workflow.failure.error_message": "no stock"}


def test_stalled_shows_as_stalled_with_its_reason(api, manager) -> None:
    start(api, instance_id="stuck")
    reason = json.dumps({"message": "workflow 'wf' is not registered here", "error_type": "UnknownWorkflow",
                         "stack_trace": None})
    set_state(manager, "stuck", status="STALLED", failure=reason)
    body = api.get("/v1.0/workflows/dapr/stuck").json()
    assert body["runtimeStatus"] == "STALLED"
    assert body["properties"]["dapr.workflow.failure.error_type"] == "UnknownWorkflow"


@pytest.mark.parametrize("prefix", VERSIONS)
def test_pause_resume_terminate_raise_event_and_purge_answer_202_with_an_empty_object(api, manager, prefix) -> None:
    start(api, instance_id="life", prefix=prefix)
    set_state(manager, "life", status="RUNNING")
    for action in ("pause", "resume", "raiseEvent/approval", "terminate"):
        r = api.post(f"{prefix}/workflows/dapr/life/{action}", content=b'{"ok": true}')
        assert (r.status_code, r.json()) == (202, {}), action
    set_state(manager, "life", status="TERMINATED")
    r = api.post(f"{prefix}/workflows/dapr/life/purge")
    assert (r.status_code, r.json()) == (202, {})
    assert api.get(f"{prefix}/workflows/dapr/life").status_code == 404


def test_pause_and_resume_are_visible_as_soon_as_the_call_returns(api, manager) -> None:
    start(api, instance_id="p1")
    set_state(manager, "p1", status="RUNNING")
    api.post("/v1.0/workflows/dapr/p1/pause")
    assert api.get("/v1.0/workflows/dapr/p1").json()["runtimeStatus"] == "SUSPENDED"
    api.post("/v1.0/workflows/dapr/p1/resume")
    assert api.get("/v1.0/workflows/dapr/p1").json()["runtimeStatus"] == "RUNNING"


def test_raise_event_and_terminate_write_inbox_messages(api, manager) -> None:
    start(api, instance_id="ev1")
    set_state(manager, "ev1", status="RUNNING")
    before = len(manager.history("ev1"))
    api.post("/v1.0/workflows/dapr/ev1/raiseEvent/approval", content=b'{"by": "me"}')
    api.post("/v1.0/workflows/dapr/ev1/terminate?non_recursive=true")
    pending = [iid for iid, _ in manager.store.pending_instances(datetime.now(timezone.utc) + timedelta(seconds=1))]
    assert "ev1" in pending
    assert len(manager.history("ev1")) == before  # nothing runs here: the orchestrator applies them


def inbox_size(manager: WorkflowManager, instance_id: str) -> int:
    with manager.store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.inbox)
                            .where(schema.inbox.c.instance_id == instance_id)).scalar_one()


@pytest.mark.parametrize("action", ["terminate", "pause", "resume", "raiseEvent/approval"])
def test_a_signal_to_a_finished_instance_is_accepted_and_changes_nothing_as_in_dapr(api, manager, action) -> None:
    start(api, instance_id="fin1")
    set_state(manager, "fin1", status="COMPLETED", output='"done"')
    before = inbox_size(manager, "fin1")
    r = api.post(f"/v1.0/workflows/dapr/fin1/{action}")
    assert (r.status_code, r.json()) == (202, {})
    assert (inbox_size(manager, "fin1"), manager.state("fin1").runtime_status.name) == (before, "COMPLETED")


# -- errors -------------------------------------------------------------------------------------


def _error(r: Any, status: int, code: str) -> dict[str, str]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code, body
    return body


@pytest.mark.parametrize(("method", "path", "code"), [
    ("GET", "/v1.0/workflows/dapr/", "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("POST", "/v1.0/workflows/dapr//terminate", "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("POST", "/v1.0/workflows/dapr//raiseEvent/x", "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("POST", "/v1.0/workflows/dapr//pause", "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("POST", "/v1.0-beta1/workflows/dapr//purge", "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("GET", "/v1.0/workflows/dapr/" + "x" * 65, "ERR_INSTANCE_ID_TOO_LONG"),
    ("POST", "/v1.0/workflows/dapr/wf/start?instanceID=" + "x" * 65, "ERR_INSTANCE_ID_TOO_LONG"),
    ("POST", "/v1.0/workflows/dapr/" + "y" * 65 + "/resume", "ERR_INSTANCE_ID_TOO_LONG"),
    ("POST", "/v1.0/workflows/dapr/wf/start?instanceID=a:b", "ERR_INSTANCE_ID_INVALID"),
    ("POST", "/v1.0/workflows/dapr/wf/start?instanceID=parent:0001", "ERR_INSTANCE_ID_INVALID"),
    ("GET", "/v1.0/workflows/dapr/parent:01x", "ERR_INSTANCE_ID_INVALID"),
    ("GET", "/v1.0/workflows/dapr/a.b", "ERR_INSTANCE_ID_INVALID"),
    ("GET", "/v1.0/workflows/dapr/caf%C3%A9", "ERR_INSTANCE_ID_INVALID"),
    ("POST", "/v1.0/workflows/dapr/a%20b/terminate", "ERR_INSTANCE_ID_INVALID"),
    ("POST", "/v1.0/workflows/dapr/a%00b/purge", "ERR_INSTANCE_ID_INVALID"),
    ("GET", "/v1.0/workflows/dapr/%FF/history", "ERR_INSTANCE_ID_INVALID"),
    ("POST", "/v1.0/workflows/dapr//start", "ERR_WORKFLOW_NAME_MISSING"),
    ("POST", "/v1.0/workflows/dapr/wf1/raiseEvent/", "ERR_WORKFLOW_EVENT_NAME_MISSING"),
    ("POST", "/v1.0/workflows/dapr/wf1/raiseEvent", "ERR_WORKFLOW_EVENT_NAME_MISSING"),
    ("GET", "/v1.0/workflows/temporal/x", "ERR_WORKFLOW_COMPONENT_NOT_FOUND"),
    ("POST", "/v1.0/workflows/other/wf/start", "ERR_WORKFLOW_COMPONENT_NOT_FOUND"),
    ("GET", "/v1.0/workflows//x", "ERR_WORKFLOW_COMPONENT_MISSING"),
])
def test_bad_input_gets_daprs_400s(api, method, path, code) -> None:
    _error(api.request(method, path), 400, code)


@pytest.mark.parametrize("action", ["GET", "terminate", "pause", "resume", "purge", "raiseEvent/go", "history"])
def test_unknown_instances_get_404_with_daprs_message(api, action) -> None:
    r = api.get("/v1.0/workflows/dapr/ghost" + ("/history" if action == "history" else "")) if action in (
        "GET", "history") else api.post(f"/v1.0/workflows/dapr/ghost/{action}")
    body = _error(r, 404, "ERR_INSTANCE_ID_NOT_FOUND")
    assert body["message"] == "unable to find workflow with the provided instance ID: ghost"


def test_starting_an_active_id_is_err_start_workflow(api) -> None:
    start(api, instance_id="twice")
    body = _error(start(api, instance_id="twice"), 500, "ERR_START_WORKFLOW")
    assert body["message"].startswith("error starting workflow 'wf': ") and "twice" in body["message"]


def test_purging_an_unfinished_instance_is_err_purge_workflow(api, manager) -> None:
    start(api, instance_id="busy")
    body = _error(api.post("/v1.0/workflows/dapr/busy/purge"), 500, "ERR_PURGE_WORKFLOW")
    assert body["message"].startswith("error purging workflow busy: ")
    assert manager.state("busy") is not None


@pytest.mark.parametrize("body", [b"{bad", b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"[" * 100_000,
                                  b'"unterminated'])
def test_a_body_that_is_not_utf8_json_is_a_400_never_a_500(api, manager, body) -> None:
    _error(start(api, instance_id="j1", body=body), 400, "ERR_MALFORMED_REQUEST")
    assert manager.state("j1") is None
    start(api, instance_id="j2")
    _error(api.post("/v1.0/workflows/dapr/j2/raiseEvent/e", content=body), 400, "ERR_MALFORMED_REQUEST")


@pytest.mark.parametrize(("operation", "method", "path", "code"), [
    ("state", "GET", "/v1.0/workflows/dapr/x1", "ERR_GET_WORKFLOW"),
    ("schedule", "POST", "/v1.0/workflows/dapr/wf/start", "ERR_START_WORKFLOW"),
    ("terminate", "POST", "/v1.0/workflows/dapr/x1/terminate", "ERR_TERMINATE_WORKFLOW"),
    ("raise_event", "POST", "/v1.0/workflows/dapr/x1/raiseEvent/e", "ERR_RAISE_EVENT_WORKFLOW"),
    ("suspend", "POST", "/v1.0/workflows/dapr/x1/pause", "ERR_PAUSE_WORKFLOW"),
    ("resume", "POST", "/v1.0/workflows/dapr/x1/resume", "ERR_RESUME_WORKFLOW"),
    ("purge", "POST", "/v1.0/workflows/dapr/x1/purge", "ERR_PURGE_WORKFLOW"),
    ("list_instances", "GET", "/v1.0/workflows/dapr", "ERR_LIST_WORKFLOWS"),
    ("history", "GET", "/v1.0/workflows/dapr/x1/history", "ERR_GET_WORKFLOW_HISTORY"),
])
def test_an_unexpected_failure_is_the_operations_500(api, manager, monkeypatch, operation, method, path, code) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(manager, operation, boom)
    body = _error(api.request(method, path), 500, code)
    assert "secret detail" not in body["message"]  # the cause is logged, not sent


def test_a_database_that_is_down_is_a_503_and_health_says_not_ready(tmp_path) -> None:
    from starlette.testclient import TestClient

    from tests.fixtures.redis import free_port

    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing"
    manager = WorkflowManager(Settings(database_url=url, broker_url="memory://localhost/", app_id="down"))
    with TestClient(create_app(manager, ApiSettings()), raise_server_exceptions=False) as api:
        r = api.get("/v1.0/workflows/dapr/x1")
        _error(r, 503, "ERR_GET_WORKFLOW")
        assert r.headers["retry-after"] == "1"
        _error(start(api), 503, "ERR_START_WORKFLOW")
        _error(api.post("/v1.0/workflows/dapr/x1/purge"), 503, "ERR_PURGE_WORKFLOW")
        _error(api.get("/v1.0/healthz"), 503, "ERR_HEALTH_NOT_READY")
    manager.close()


def test_unknown_routes_and_methods_answer_json(api) -> None:
    _error(api.get("/v1.0/nothing"), 404, "ERR_NOT_FOUND")
    _error(api.get("/v1.0/workflows/dapr/x/terminate"), 405, "ERR_METHOD_NOT_ALLOWED")


# -- appID, list, history, health, OpenAPI -----------------------------------------------------


def test_app_id_acts_on_an_instance_owned_by_another_app(api, manager) -> None:
    assert start(api, instance_id="other-1", app="billing").status_code == 202
    assert manager.store.get_instance("other-1").app_id == "billing"
    _error(api.get("/v1.0/workflows/dapr/other-1"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    _error(api.post("/v1.0/workflows/dapr/other-1/pause"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    assert api.get("/v1.0/workflows/dapr/other-1?appID=billing").json()["instanceID"] == "other-1"
    assert api.post("/v1.0/workflows/dapr/other-1/pause?appID=billing").status_code == 202
    assert manager.state("other-1").runtime_status.name == "SUSPENDED"
    _error(api.get("/v1.0/workflows/dapr/other-1?appID=bad%20app"), 400, "ERR_MALFORMED_REQUEST")


def test_list_filters_and_pages(api, manager) -> None:
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    manager.store.create_instance(NewInstance(instance_id="old-1", app_id=manager.settings.app_id, name="a",
                                              created_at=old),
                                  inbox.message("start", ev.ExecutionStarted(clock.naive_utc(old), "a")))
    for i in range(5):
        start(api, name="a" if i % 2 else "b", instance_id=f"n{i}")
    set_state(manager, "n1", status="COMPLETED")
    start(api, instance_id="elsewhere", app="billing")

    def ids(query: str) -> list[str]:
        r = api.get("/v1.0/workflows/dapr" + query)
        assert r.status_code == 200, r.text
        return [w["instanceID"] for w in r.json()["workflows"]]

    assert ids("") == ["old-1", "n0", "n1", "n2", "n3", "n4"]
    assert ids("?name=a") == ["old-1", "n1", "n3"]
    assert ids("?status=completed") == ["n1"]
    assert ids("?status=PENDING,COMPLETED&name=b") == ["n0", "n2", "n4"]
    cutoff = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert ids(f"?createdBefore={cutoff.replace('+00:00', 'Z')}") == ["old-1"]
    assert "old-1" not in ids(f"?createdAfter={cutoff.replace('+00:00', 'Z')}")
    assert ids("?appID=billing") == ["elsewhere"]
    page = api.get("/v1.0/workflows/dapr?pageSize=4").json()
    assert len(page["workflows"]) == 4 and page["workflows"][0]["appID"] == manager.settings.app_id
    rest = api.get(f"/v1.0/workflows/dapr?pageSize=4&continuationToken={page['continuationToken']}").json()
    assert [w["instanceID"] for w in rest["workflows"]] == ["n3", "n4"] and "continuationToken" not in rest
    for bad in ("?status=SLEEPING", "?pageSize=0", "?pageSize=abc", "?createdAfter=yesterday",
                "?continuationToken=-1"):
        _error(api.get("/v1.0/workflows/dapr" + bad), 400, "ERR_MALFORMED_REQUEST")


def test_history_describes_each_event(api, manager) -> None:
    start(api, instance_id="h1", body=b'"in"')
    t = datetime(2025, 1, 2, 15, 4, 5)
    events = [ev.OrchestratorStarted(t), ev.ExecutionStarted(t, "wf", '"in"'),
              ev.TaskScheduled(t, 0, "charge", "5"), ev.TaskCompleted(t + timedelta(milliseconds=250), 0, '"ok"'),
              ev.ExecutionCompleted(t + timedelta(seconds=1), "COMPLETED", '"done"')]
    with manager.store.step("h1") as tx:
        tx.append_history([NewEvent(i, *codec.encode(e), timestamp=as_utc(e.timestamp))
                           for i, e in enumerate(events)])
    body = api.get("/v1.0/workflows/dapr/h1/history").json()
    assert body["instanceID"] == "h1"
    rows = [(e["type"], e["name"], e["eventId"], e["status"], e["elapsed"]) for e in body["events"]]
    assert rows == [("OrchestratorStarted", None, None, None, "0s"), ("ExecutionStarted", "wf", None, "RUNNING", "0s"),
                    ("TaskScheduled", "charge", 0, None, "0s"), ("TaskCompleted", "charge", 0, "COMPLETED", "250ms"),
                    ("ExecutionCompleted", None, None, "COMPLETED", "750ms")]
    assert body["events"][3]["details"] == 'result="ok"' and body["events"][0]["timestamp"] == "2025-01-02T15:04:05Z"


def test_health_and_openapi(api) -> None:
    for prefix in VERSIONS:
        for path in ("/healthz", "/healthz/outbound"):
            r = api.get(prefix + path)
            assert r.status_code == 204 and r.content == b""
    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for prefix in VERSIONS:
        for path in ("/workflows/{component}/{workflowName}/start", "/workflows/{component}/{instanceID}",
                     "/workflows/{component}/{instanceID}/raiseEvent/{eventName}", "/workflows/{component}",
                     "/workflows/{component}/{instanceID}/history", "/healthz"):
            assert prefix + path in doc["paths"]
    assert doc["components"]["securitySchemes"]["daprApiToken"]["name"] == "dapr-api-token"


def test_token_auth_in_process(manager) -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app(manager, ApiSettings(token="s3cret")), raise_server_exceptions=False) as api:
        for headers, query in (({}, ""), ({"dapr-api-token": "wrong"}, ""), ({}, "?dapr-api-token=s3cret")):
            r = api.get("/v1.0/workflows/dapr/x1" + query, headers=headers)
            assert (r.status_code, r.text) == (401, "invalid api token")
        assert api.get("/openapi.json").status_code == 401
        assert api.get("/v1.0/healthz").status_code == 204
        assert api.get("/v1.0-beta1/healthz/outbound").status_code == 204
        assert api.get("/v1.0/workflows/dapr/x1", headers={"dapr-api-token": "s3cret"}).status_code == 404
    assert "s3cret" not in repr(ApiSettings(token="s3cret"))


def test_a_denied_management_call_gets_the_operations_code_with_the_policy_text(api, manager, monkeypatch) -> None:
    from ledgerflow.access import WorkflowAccessDeniedError

    start(api, instance_id="guarded")

    def deny(operation: str, **_: Any) -> None:
        raise WorkflowAccessDeniedError(operation, "guarded")

    monkeypatch.setattr(manager.access, "check", deny)
    body = _error(api.post("/v1.0/workflows/dapr/guarded/raiseEvent/go"), 403, "ERR_RAISE_EVENT_WORKFLOW")
    assert "access denied by workflow access policy" in body["message"]
    body = _error(api.post("/v1.0/workflows/dapr/guarded/terminate"), 403, "ERR_TERMINATE_WORKFLOW")
    assert "access denied by workflow access policy" in body["message"]
