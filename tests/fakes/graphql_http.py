"""The fake's HTTP GraphQL endpoint (``POST /v1-beta/gql``).

Order of checks: injected fault (status as configured), blocked User-Agent (400 "User agent ...
is blocked"), malformed body (400), bad or missing token (HTTP 200 + ``UNAUTHENTICATED``, as
Tibber answers since 2025-01-03), parse/validation errors (400 with GraphQL errors; [?] Tibber's
status is not documented, 400 is Apollo's), subscriptions (400: they belong on the socket), then
execution (200).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)

from tests.fakes.records import HttpRecord
from tests.fakes.schema import tibber_schema
from tests.fakes.websocket import format_result

if TYPE_CHECKING:
    from tests.fakes.server import FakeTibber


async def handle_graphql_post(server: FakeTibber, request: web.Request) -> web.Response:
    """Record the request (Authorization redacted), answer it, record the status."""
    headers = {
        k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request.headers.items()
    }
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    raw = await request.text()
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw
    record = HttpRecord(
        seq=server.log.next_seq(),
        at=time.time(),
        method=request.method,
        path=request.path,
        user_agent=request.headers.get("User-Agent"),
        headers=headers,
        body=body,
        token_present=bool(token),
        token_valid=token in server.valid_tokens,
    )
    server.log.http.append(record)
    response = await _answer(server, record, body)
    record.status = response.status
    return response


async def _answer(server: FakeTibber, record: HttpRecord, body: Any) -> web.Response:
    fault = server.take_http_fault()
    if fault is not None:
        return web.Response(status=fault, text=f"fake fault: HTTP {fault}")
    if server.is_blocked(record.user_agent):
        return web.Response(status=400, text=f"User agent {record.user_agent} is blocked")
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _errors(400, "POST body must be JSON with a 'query' string", "BAD_REQUEST")
    if not record.token_valid:
        return _errors(200, "invalid token", "UNAUTHENTICATED")
    schema = tibber_schema()
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return web.json_response({"errors": [_with_code(exc, "GRAPHQL_PARSE_FAILED")]}, status=400)
    problems = validate(schema, document)
    if problems:
        errors = [_with_code(e, "GRAPHQL_VALIDATION_FAILED") for e in problems]
        return web.json_response({"errors": errors}, status=400)
    operation_name = body.get("operationName")
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
        return _errors(400, "Subscriptions are served on websocketSubscriptionUrl", "BAD_REQUEST")
    result = execute(
        schema,
        document,
        root_value=server.root_value(),
        variable_values=body.get("variables"),
        operation_name=operation_name,
    )
    if not isinstance(result, ExecutionResult):
        result = await result
    return web.json_response(format_result(result))


def _with_code(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["extensions"] = {**(error.extensions or {}), "code": code}
    return formatted


def _errors(status: int, message: str, code: str) -> web.Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return web.json_response(body, status=status)
