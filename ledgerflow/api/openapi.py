"""The OpenAPI 3.1 document served at `/openapi.json`."""

from __future__ import annotations

from typing import Any

from ledgerflow.api import errors

VERSIONS = ("/v1.0", "/v1.0-beta1", "/v1.0-alpha1")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_INSTANCE = {"name": "instanceID", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
_COMPONENT = {"name": "component", "in": "path", "required": True, "schema": {"type": "string", "enum": ["dapr"]}}
_APP = {"name": "appID", "in": "query", "required": False, "schema": {"type": "string"},
        "description": "Act on an instance owned by this app (default: the server's LEDGERFLOW_APP_ID)."}
_NON_RECURSIVE = {"name": "non_recursive", "in": "query", "required": False, "schema": {"type": "boolean"},
                  "description": "Leave child workflows alone."}
_JSON_BODY = {"required": False, "description": "JSON text (empty: none).",
              "content": {"application/json": {"schema": {}}}}
_COMMON_ERRORS = {
    "400": _error("Invalid input: ERR_INSTANCE_ID_PROVIDED_MISSING, ERR_INSTANCE_ID_TOO_LONG, "
                  "ERR_INSTANCE_ID_INVALID, ERR_WORKFLOW_COMPONENT_MISSING, ERR_WORKFLOW_COMPONENT_NOT_FOUND, "
                  "ERR_MALFORMED_REQUEST"),
    "401": {"description": "Missing or wrong `dapr-api-token` header; body `invalid api token`.",
            "content": {"text/plain": {"schema": {"type": "string"}}}},
    "404": _error("ERR_INSTANCE_ID_NOT_FOUND"),
    "413": _error("ERR_BODY_TOO_LARGE"),
    "503": _error("The workflow store is unavailable (the operation's error code)."),
}
_ACCEPTED = {"description": "Accepted.", "content": {"application/json": {"schema": {"type": "object"}}}}


def _action(summary: str, code: str, extra: list[dict[str, Any]] | None = None,
            body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_COMPONENT, _INSTANCE, _APP, *(extra or [])],
        "responses": {"202": _ACCEPTED, **_COMMON_ERRORS, "500": _error(code)},
    }
    if body:
        op["requestBody"] = _JSON_BODY
    return {"post": op}


def _paths() -> dict[str, Any]:
    base = "/workflows/{component}"
    one = base + "/{instanceID}"
    return {
        "/healthz": {"get": {"summary": "Health (no token needed)", "security": [], "responses": {
            "204": {"description": "Ready."}, "503": _error(errors.ERR_HEALTH_NOT_READY)}}},
        base + "/{workflowName}/start": {"post": {
            "summary": "Start a workflow",
            "parameters": [_COMPONENT,
                           {"name": "workflowName", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "instanceID", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}, _APP],
            "requestBody": _JSON_BODY,
            "responses": {"202": {"description": "Started.", "content": {"application/json": {
                "schema": _ref("StartResponse")}}}, **_COMMON_ERRORS,
                "500": _error("ERR_START_WORKFLOW (e.g. an instance with this ID is still active)")},
        }},
        one: {"get": {
            "summary": "Get a workflow instance",
            "parameters": [_COMPONENT, _INSTANCE, _APP],
            "responses": {"200": {"description": "The instance.", "content": {"application/json": {
                "schema": _ref("Workflow")}}}, **_COMMON_ERRORS, "500": _error(errors.ERR_GET_WORKFLOW)},
        }},
        one + "/terminate": _action("Terminate (recursively, unless non_recursive)", errors.ERR_TERMINATE_WORKFLOW,
                                    [_NON_RECURSIVE]),
        one + "/pause": _action("Suspend", errors.ERR_PAUSE_WORKFLOW),
        one + "/resume": _action("Resume", errors.ERR_RESUME_WORKFLOW),
        one + "/purge": _action("Delete a finished instance and its history", errors.ERR_PURGE_WORKFLOW,
                                [_NON_RECURSIVE]),
        one + "/raiseEvent/{eventName}": _action(
            "Raise an event (body: the event data)", errors.ERR_RAISE_EVENT_WORKFLOW,
            [{"name": "eventName", "in": "path", "required": True, "schema": {"type": "string"}}], body=True),
        base: {"get": {
            "summary": "List instances, oldest first (Ledgerflow)",
            "parameters": [_COMPONENT, _APP,
                           {"name": "name", "in": "query", "schema": {"type": "string"}},
                           {"name": "status", "in": "query", "schema": {"type": "string"},
                            "description": "Repeat or comma-separate: RUNNING, COMPLETED, FAILED, TERMINATED, "
                                           "PENDING, SUSPENDED, STALLED."},
                           {"name": "createdAfter", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                           {"name": "createdBefore", "in": "query",
                            "schema": {"type": "string", "format": "date-time"}},
                           {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                          "maximum": 1000, "default": 100}},
                           {"name": "continuationToken", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "A page.", "content": {"application/json": {
                "schema": _ref("WorkflowList")}}}, **_COMMON_ERRORS, "500": _error(errors.ERR_LIST_WORKFLOWS)},
        }},
        one + "/history": {"get": {
            "summary": "An instance's history (Ledgerflow)",
            "parameters": [_COMPONENT, _INSTANCE, _APP],
            "responses": {"200": {"description": "Events in order.", "content": {"application/json": {
                "schema": _ref("History")}}}, **_COMMON_ERRORS, "500": _error(errors.ERR_GET_WORKFLOW_HISTORY)},
        }},
    }


def _schemas() -> dict[str, Any]:
    string = {"type": "string"}
    workflow = {
        "type": "object",
        "required": ["instanceID", "workflowName", "createdAt", "lastUpdatedAt", "runtimeStatus", "properties"],
        "properties": {
            "instanceID": string, "workflowName": string,
            "createdAt": {"type": "string", "format": "date-time"},
            "lastUpdatedAt": {"type": "string", "format": "date-time"},
            "runtimeStatus": {"type": "string", "enum": ["RUNNING", "COMPLETED", "FAILED", "TERMINATED", "PENDING",
                                                         "SUSPENDED", "STALLED"]},
            "properties": {"type": "object", "additionalProperties": string, "description": (
                "dapr.workflow.input, dapr.workflow.output, dapr.workflow.custom_status, "
                "dapr.workflow.failure.error_type, dapr.workflow.failure.error_message: each only when it has "
                "a value; the output only when not failed")},
            "appID": {"type": "string", "description": "In listings only."},
            "parentInstanceID": {"type": "string", "description": "In listings only, for child workflows."},
        },
    }
    event = {"type": "object", "properties": {
        "generation": {"type": "integer"}, "sequence": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"}, "type": string,
        "name": {"type": ["string", "null"]}, "eventId": {"type": ["integer", "null"]},
        "elapsed": {"type": "string", "description": "Since the previous event."},
        "status": {"type": ["string", "null"]}, "details": {"type": ["string", "null"]},
        "event": {"type": "object", "description": "The stored event."}}}
    return {
        "Error": {"type": "object", "required": ["errorCode", "message"],
                  "properties": {"errorCode": string, "message": string}},
        "StartResponse": {"type": "object", "required": ["instanceID"], "properties": {"instanceID": string}},
        "Workflow": workflow,
        "WorkflowList": {"type": "object", "properties": {
            "workflows": {"type": "array", "items": _ref("Workflow")},
            "continuationToken": {"type": "string", "description": "Pass back to get the next page."}}},
        "History": {"type": "object", "properties": {"instanceID": string,
                                                     "events": {"type": "array", "items": event}}},
    }


def document() -> dict[str, Any]:
    paths = {f"{version}{path}": item for version in VERSIONS for path, item in _paths().items()}
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
