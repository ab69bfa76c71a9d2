"""The fake's executable GraphQL schema: ``tibber_schema.graphql`` plus resolvers.

Queries resolve against plain dicts (``root_value={"viewer": ...}``); the resolvers that take
arguments are attached here. ``liveMeasurement`` subscribes through the ``LiveContext`` passed
as ``context_value``, whose stream the server feeds one event per emitted frame.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema, build_schema

from tests.fakes.history import consumption_connection
from tests.fakes.homes import FakeHome

SCHEMA_PATH = Path(__file__).with_name("tibber_schema.graphql")


class LiveContext(Protocol):
    """What a ``liveMeasurement`` subscription needs from the server."""

    def find_home(self, home_id: str) -> FakeHome | None: ...

    def open_stream(self, home_id: str) -> AsyncIterator[dict[str, Any]]: ...


def _viewer_home(viewer: dict[str, Any], _info: GraphQLResolveInfo[Any], id: str) -> Any:
    for home in viewer["homes"]:
        if home["id"] == id:
            return home
    raise GraphQLError(f"Could not find home with id {id}")


def _home_consumption(home: dict[str, Any], _info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    fake: FakeHome = home["_home"]
    return consumption_connection(fake, **args)


def _subscribe_live(
    _root: Any,
    info: GraphQLResolveInfo[Any],
    homeId: str,
) -> AsyncIterator[dict[str, Any]]:
    context: LiveContext = info.context
    if context.find_home(homeId) is None:
        # [?] Tibber's exact answer for a foreign/unknown home is not documented.
        raise GraphQLError(f"Could not find home with id {homeId}")
    return context.open_stream(homeId)


def _event(event: dict[str, Any], _info: GraphQLResolveInfo[Any], **_args: Any) -> dict[str, Any]:
    return event


def _object_type(schema: GraphQLSchema, name: str) -> GraphQLObjectType:
    found = schema.get_type(name)
    assert isinstance(found, GraphQLObjectType), name
    return found


@functools.cache
def tibber_schema() -> GraphQLSchema:
    """Build the schema once; resolvers depend only on root value and context."""
    schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
    _object_type(schema, "Viewer").fields["home"].resolve = _viewer_home
    _object_type(schema, "Home").fields["consumption"].resolve = _home_consumption
    live = _object_type(schema, "RootSubscription").fields["liveMeasurement"]
    live.subscribe = _subscribe_live
    live.resolve = _event
    return schema
