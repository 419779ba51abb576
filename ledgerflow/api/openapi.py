"""The OpenAPI 3.1 document served at `/openapi.json`.

It says exactly what the routes accept and answer, so that a schema-driven fuzzer
(schemathesis, row B4 of RELIABILITY.md) can hold the server to it: every parameter's
grammar, every status a route can answer with its content type, and links from a started
instance's ID to the operations on it (stateful testing). The same operations are served
under each of `VERSIONS`; their operation IDs carry the version's suffix.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.api import errors
from ledgerflow.errors import INSTANCE_ID_PATTERN, MAX_CHILD_INSTANCE_ID_LENGTH, NEW_INSTANCE_ID_PATTERN
from orchestrator.engine import status

VERSIONS = ("/v1.0", "/v1.0-beta1", "/v1.0-alpha1")
_SUFFIX = {"/v1.0": "", "/v1.0-beta1": "Beta1", "/v1.0-alpha1": "Alpha1"}
STATUSES = (status.RUNNING, status.COMPLETED, status.FAILED, status.TERMINATED, status.PENDING, status.SUSPENDED,
            status.STALLED)
NO_NUL = "^[^\\u0000]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def _status_pattern() -> str:
    """Comma-separated statuses in any case, spaces around each; empty items are skipped."""
    token = "(?:" + "|".join(_any_case(s) for s in STATUSES) + ")"
    return f"^ *{token}? *(?:, *{token}? *)*$"


_FLAG = {"type": "string", "pattern": "^(?:" + "|".join(map(_any_case, errors.FLAG_TRUE + errors.FLAG_FALSE)) + ")$"}
_INSTANCE = {"name": "instanceID", "in": "path", "required": True,
             "schema": {"type": "string", "maxLength": MAX_CHILD_INSTANCE_ID_LENGTH,
                        "pattern": f"^{INSTANCE_ID_PATTERN}$"}}
_COMPONENT = {"name": "component", "in": "path", "required": True, "schema": {"type": "string", "enum": ["dapr"]}}
_APP = {"name": "appID", "in": "query", "required": False,
        "schema": {"type": "string", "pattern": "^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,127})?$"},
        "description": "Act on an instance owned by this app (empty or absent: the server's LEDGERFLOW_APP_ID)."}
_NON_RECURSIVE = {"name": "non_recursive", "in": "query", "required": False, "schema": _FLAG,
                  "description": "Leave child workflows alone: true or false (also yes/no, 1/0; any case)."}
_REASON = {"name": "reason", "in": "query", "required": False, "schema": {"type": "string"},
           "description": "Recorded in the instance's history."}
_WORKFLOW_NAME = {"name": "workflowName", "in": "path", "required": True,
                  "schema": {"type": "string", "minLength": 1, "maxLength": errors.MAX_NAME_LENGTH, "pattern": NO_NUL}}
_EVENT_NAME = {"name": "eventName", "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1, "pattern": NO_NUL}}
_JSON_BODY = {"required": False, "description": (
    "JSON text, the empty body meaning none. Not accepted (400): NaN, Infinity, a number too large for a "
    "double, and a string holding U+0000 or a lone surrogate."),
    "content": {"application/json": {"schema": _ref("JsonValue")}}}

_BAD_INPUT = _error("Invalid input: ERR_INSTANCE_ID_PROVIDED_MISSING, ERR_INSTANCE_ID_TOO_LONG, "
                    "ERR_INSTANCE_ID_INVALID, ERR_WORKFLOW_NAME_MISSING, ERR_WORKFLOW_EVENT_NAME_MISSING, "
                    "ERR_WORKFLOW_COMPONENT_MISSING, ERR_WORKFLOW_COMPONENT_NOT_FOUND, ERR_MALFORMED_REQUEST "
                    "(also a body that is not UTF-8 JSON, or a malformed Content-Length)")
_UNAUTHORIZED = {"description": "Missing or wrong `dapr-api-token` header; body `invalid api token`.",
                 "content": {"text/plain": {"schema": {"type": "string", "const": "invalid api token"}}}}
_FORBIDDEN = _error("The workflow access policy denies the operation (the operation's error code).")
_NOT_FOUND = _error("ERR_INSTANCE_ID_NOT_FOUND; or ERR_NOT_FOUND when a path parameter holds '/' (no route).")
_NO_ROUTE = _error("ERR_NOT_FOUND: a path parameter holding '/' leaves no route.")
_UNAVAILABLE = {**_error("The workflow store is unavailable (the operation's error code); retry."),
                "headers": {"Retry-After": {"schema": {"type": "string"}, "required": True}}}
_BODY_ERRORS = {"408": _error("ERR_REQUEST_TIMEOUT: the body did not arrive in time."),
                "413": _error("ERR_BODY_TOO_LARGE")}
_ACCEPTED = {"description": "Accepted.", "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False}}}}


def _responses(ok: dict[str, Any], internal: str, *, not_found: dict[str, Any] = _NOT_FOUND,
               body: bool = False) -> dict[str, Any]:
    out = {**ok, "400": _BAD_INPUT, "401": _UNAUTHORIZED, "403": _FORBIDDEN, "404": not_found}
    if body:
        out.update(_BODY_ERRORS)
    return {**out, "500": _error(internal), "503": _UNAVAILABLE}


def _link(operation: str, instance: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"component": "dapr", "instanceID": instance}}


def _links(sfx: str, instance: str, *operations: str) -> dict[str, Any]:
    return {op: _link(op + sfx, instance) for op in operations}


def _action(op_id: str, summary: str, code: str, links: dict[str, Any], extra: list[dict[str, Any]] | None = None,
            body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [_COMPONENT, _INSTANCE, _APP, *(extra or [])],
        "responses": _responses({"202": {**_ACCEPTED, "links": links}}, code, body=body),
    }
    if body:
        op["requestBody"] = _JSON_BODY
    return {"post": op}


def _paths(sfx: str) -> dict[str, Any]:
    base = "/workflows/{component}"
    one = base + "/{instanceID}"
    from_path = "$request.path.instanceID"
    from_body = "$response.body#/instanceID"
    health = {"get": {"operationId": "health" + sfx, "summary": "Health (no token needed)", "security": [],
                      "responses": {"204": {"description": "Ready."},
                                    "503": _error(errors.ERR_HEALTH_NOT_READY)}}}
    outbound = {"get": {**health["get"], "operationId": "healthOutbound" + sfx,
                        "summary": "Outbound health, as Dapr has it (the same check; no token needed)"}}
    return {
        "/healthz": health,
        "/healthz/outbound": outbound,
        base + "/{workflowName}/start": {"post": {
            "operationId": "startWorkflow" + sfx,
            "summary": "Start a workflow",
            "parameters": [_COMPONENT, _WORKFLOW_NAME,
                           {"name": "instanceID", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": f"^(?:{NEW_INSTANCE_ID_PATTERN})?$"},
                            "description": "The new instance's ID (empty or absent: a random one)."}, _APP],
            "requestBody": _JSON_BODY,
            "responses": _responses(
                {"202": {"description": "Started.",
                         "headers": {"Location": {"schema": {"type": "string"}, "required": True,
                                                  "description": "The instance's URL path."}},
                         "content": {"application/json": {"schema": _ref("StartResponse")}},
                         "links": _links(sfx, from_body, "getWorkflow", "getWorkflowHistory", "raiseEvent",
                                         "pauseWorkflow", "resumeWorkflow", "terminateWorkflow", "purgeWorkflow")}},
                "ERR_START_WORKFLOW (as Dapr answers when an instance with this ID is still active)",
                not_found=_NO_ROUTE, body=True),
        }},
        one: {"get": {
            "operationId": "getWorkflow" + sfx,
            "summary": "Get a workflow instance",
            "parameters": [_COMPONENT, _INSTANCE, _APP],
            "responses": _responses({"200": {
                "description": "The instance.", "content": {"application/json": {"schema": _ref("Workflow")}},
                "links": _links(sfx, from_body, "getWorkflowHistory", "terminateWorkflow", "purgeWorkflow")}},
                errors.ERR_GET_WORKFLOW),
        }},
        one + "/terminate": _action(
            "terminateWorkflow" + sfx, "Terminate (recursively, unless non_recursive)", errors.ERR_TERMINATE_WORKFLOW,
            _links(sfx, from_path, "getWorkflow", "purgeWorkflow"), [_NON_RECURSIVE]),
        one + "/pause": _action(
            "pauseWorkflow" + sfx, "Suspend", errors.ERR_PAUSE_WORKFLOW,
            _links(sfx, from_path, "resumeWorkflow", "getWorkflow", "terminateWorkflow"), [_REASON]),
        one + "/resume": _action("resumeWorkflow" + sfx, "Resume", errors.ERR_RESUME_WORKFLOW,
                                 _links(sfx, from_path, "getWorkflow", "pauseWorkflow"), [_REASON]),
        one + "/purge": _action(
            "purgeWorkflow" + sfx,
            "Delete a finished instance and its history (Dapr's ERR_PURGE_WORKFLOW 500 while it still runs)",
            errors.ERR_PURGE_WORKFLOW, _links(sfx, from_path, "getWorkflow", "getWorkflowHistory"), [_NON_RECURSIVE]),
        one + "/raiseEvent/{eventName}": _action(
            "raiseEvent" + sfx, "Raise an event (body: the event data)", errors.ERR_RAISE_EVENT_WORKFLOW,
            _links(sfx, from_path, "getWorkflow"), [_EVENT_NAME], body=True),
        base: {"get": {
            "operationId": "listWorkflows" + sfx,
            "summary": "List instances, oldest first (Ledgerflow)",
            "parameters": [_COMPONENT, _APP,
                           {"name": "name", "in": "query", "schema": {"type": "string", "pattern": NO_NUL},
                            "description": "Only instances of this workflow (empty: any)."},
                           {"name": "status", "in": "query", "schema": {"type": "string", "pattern": _status_pattern()},
                            "description": "Comma-separated, any case: " + ", ".join(STATUSES) + " (empty: any)."},
                           {"name": "createdAfter", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                           {"name": "createdBefore", "in": "query",
                            "schema": {"type": "string", "format": "date-time"}},
                           {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                          "maximum": 1000, "default": 100}},
                           {"name": "continuationToken", "in": "query",
                            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                            "description": "From the previous page."}],
            "responses": _responses({"200": {"description": "A page.", "content": {"application/json": {
                "schema": _ref("WorkflowList")}}}}, errors.ERR_LIST_WORKFLOWS, not_found=_NO_ROUTE),
        }},
        "/metadata": {"get": {
            "operationId": "getMetadata" + sfx,
            "summary": "Dapr's sidecar metadata, which Dapr's SDKs read before their first call",
            "responses": {"200": {"description": "The app ID and runtime; empty lists for what does not apply.",
                                  "content": {"application/json": {"schema": _ref("Metadata")}}},
                          "401": _UNAUTHORIZED}}},
        one + "/rerun": {"post": {
            "operationId": "rerunWorkflow" + sfx,
            "summary": "Rerun a finished workflow from an event ID of its history, as a new instance "
                       "(Ledgerflow; Dapr has it over gRPC). A body is the new instance's input.",
            "parameters": [_COMPONENT, _INSTANCE, _APP,
                           {"name": "eventID", "in": "query", "required": True,
                            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
                           {"name": "newInstanceID", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": f"^(?:{NEW_INSTANCE_ID_PATTERN})?$"}}],
            "requestBody": _JSON_BODY,
            "responses": {**_responses(
                {"202": {"description": "Started.", "content": {"application/json": {"schema": _ref("StartResponse")}},
                         "links": _links(sfx, from_body, "getWorkflow", "getWorkflowHistory")}},
                "ERR_RERUN_WORKFLOW (the source is still active, or the new ID is)",
                not_found=_error("ERR_INSTANCE_ID_NOT_FOUND, or ERR_RERUN_EVENT: no activity call, timer or child "
                                 "workflow of the history has this event ID"), body=True),
                "409": _error("ERR_RERUN_SIGNED: a signed history is not rerun")},
        }},
        one + "/history": {"get": {
            "operationId": "getWorkflowHistory" + sfx,
            "summary": "An instance's history (Ledgerflow)",
            "parameters": [_COMPONENT, _INSTANCE, _APP],
            "responses": _responses({"200": {"description": "Events in order.", "content": {"application/json": {
                "schema": _ref("History")}}}}, errors.ERR_GET_WORKFLOW_HISTORY),
        }},
    }


def _schemas() -> dict[str, Any]:
    string = {"type": "string"}
    nullable_string = {"type": ["string", "null"]}
    workflow = {
        "type": "object",
        "required": ["instanceID", "workflowName", "createdAt", "lastUpdatedAt", "runtimeStatus", "properties"],
        "properties": {
            "instanceID": string, "workflowName": string,
            "createdAt": {"type": "string", "format": "date-time"},
            "lastUpdatedAt": {"type": "string", "format": "date-time"},
            "runtimeStatus": {"type": "string", "enum": [*STATUSES, "UNKNOWN"]},
            "properties": {"type": "object", "additionalProperties": string, "description": (
                "dapr.workflow.input, dapr.workflow.output, dapr.workflow.custom_status, "
                "dapr.workflow.failure.error_type, dapr.workflow.failure.error_message: each only when it has "
                "a value; the output only when not failed")},
            "appID": {"type": "string", "description": "In listings only."},
            "parentInstanceID": {"type": "string", "description": "In listings only, for child workflows."},
        },
        "additionalProperties": False,
    }
    event = {"type": "object",
             "required": ["generation", "sequence", "timestamp", "type", "name", "eventId", "elapsed", "status",
                          "details", "event"],
             "properties": {
                 "generation": {"type": "integer"}, "sequence": {"type": "integer"},
                 "timestamp": {"type": "string", "format": "date-time"}, "type": string,
                 "name": nullable_string, "eventId": {"type": ["integer", "null"]},
                 "elapsed": {"type": "string", "description": "Since the previous event."},
                 "status": nullable_string, "details": nullable_string,
                 "event": {"type": "object", "description": "The stored event."}}}
    no_nul = {"type": "string", "pattern": NO_NUL}
    return {
        "Error": {"type": "object", "required": ["errorCode", "message"],
                  "properties": {"errorCode": string, "message": string}},
        "StartResponse": {"type": "object", "required": ["instanceID"],
                          "properties": {"instanceID": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}},
        "Workflow": workflow,
        "WorkflowList": {"type": "object", "required": ["workflows"], "properties": {
            "workflows": {"type": "array", "items": _ref("Workflow")},
            "continuationToken": {"type": "string", "description": "Pass back to get the next page."}}},
        "History": {"type": "object", "required": ["instanceID", "events"],
                    "properties": {"instanceID": string, "events": {"type": "array", "items": event}}},
        "Metadata": {"type": "object", "required": ["id", "runtimeVersion", "enabledFeatures", "actors",
                                                    "components", "subscriptions", "extended"],
                     "properties": {"id": string, "runtimeVersion": string,
                                    "enabledFeatures": {"type": "array", "items": string},
                                    "extended": {"type": "object", "additionalProperties": string}}},
        "JsonValue": {"description": "Any JSON value whose strings (and keys) hold no U+0000.", "anyOf": [
            {"type": ["null", "boolean", "number"]}, no_nul,
            {"type": "array", "items": _ref("JsonValue")},
            {"type": "object", "propertyNames": no_nul, "additionalProperties": _ref("JsonValue")}]},
    }


def document() -> dict[str, Any]:
    paths = {f"{version}{path}": item for version in VERSIONS for path, item in _paths(_SUFFIX[version]).items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ledgerflow workflow API", "version": "1.0",
                 "description": "Dapr's workflow HTTP API (identical under /v1.0, /v1.0-beta1 and /v1.0-alpha1), "
                                "plus list and history. Every route but /healthz needs the `dapr-api-token` "
                                "header when LEDGERFLOW_API_TOKEN or DAPR_API_TOKEN is set."},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"daprApiToken": {"type": "apiKey", "in": "header", "name": "dapr-api-token"}},
        },
        "security": [{"daprApiToken": []}],
        "paths": paths,
    }
