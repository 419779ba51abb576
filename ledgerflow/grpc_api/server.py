"""Serving the gRPC API: `grpcio`'s thread-pool server, the `dapr-api-token` check, and the
HTTP API's limits (message size = the HTTP body cap; no token beyond loopback refused)."""

from __future__ import annotations

import hmac
import logging
from concurrent import futures
from typing import Any

import grpc

from ledgerflow.api.app import ApiSettings
from ledgerflow.api.middleware import TOKEN_HEADER
from ledgerflow.api.server import check_exposure
from ledgerflow.errors import SetupError
from ledgerflow.grpc_api import protocol
from ledgerflow.grpc_api.service import WorkflowService
from ledgerflow.management import WorkflowManager

log = logging.getLogger("ledgerflow.grpc")

#: Dapr's DAPR_GRPC_PORT default.
DEFAULT_PORT = 50001
#: Calls served at once; each wait holds one thread until its instance changes.
MAX_WORKERS = 32


class TokenAuth(grpc.ServerInterceptor):
    """Every call needs metadata `dapr-api-token` equal to the token, else UNAUTHENTICATED
    (compared in constant time), as Dapr's sidecar answers."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        given = next((v for k, v in details.invocation_metadata or () if k == TOKEN_HEADER.decode()), None)
        if given is None:
            return _refusal("missing api token in request metadata")
        if not hmac.compare_digest(given.encode() if isinstance(given, str) else given, self._token):
            return _refusal("authentication error: api token mismatch")
        return continuation(details)


_UNDECODABLE = object()


class DecodeGuard(grpc.ServerInterceptor):
    """A request that does not parse as the call's message (a string that is not UTF-8, cut
    bytes) is INVALID_ARGUMENT, not grpcio's INTERNAL "Exception deserializing request!"."""

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, behavior = handler.request_deserializer, handler.unary_unary

        def safe_parse(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception:
                return _UNDECODABLE

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if request is _UNDECODABLE:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request does not parse as this call's "
                              "protobuf message (its strings must be UTF-8)")
            return behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(guarded, request_deserializer=safe_parse,
                                                   response_serializer=handler.response_serializer)


def _refusal(message: str) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


def start(manager: WorkflowManager, host: str, port: int, settings: ApiSettings | None = None,
          servicer: Any = None) -> grpc.Server:
    """Start serving on host:port (in grpcio's own threads); the caller stops it. `servicer`:
    the service to serve (default: the client calls over `manager`)."""
    settings = settings or ApiSettings.from_env()
    check_exposure(host, port, settings, "gRPC API")
    limit = settings.max_body_bytes
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="ledgerflow-grpc"),
                         interceptors=[*([TokenAuth(settings.token)] if settings.token else []), DecodeGuard()],
                         options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)])
    protocol.service_grpc.add_TaskHubSidecarServiceServicer_to_server(servicer or WorkflowService(manager), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise SetupError(f"the gRPC API could not start on {address} (is the port in use?); pick another with "
                         "--grpc-port, or turn it off with --grpc-port 0")
    server.start()
    log.info("gRPC API on %s (token auth %s)", address, "on" if settings.token else "off")
    return server
