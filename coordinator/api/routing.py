"""Declarative routes: one decorator declares path, permission and models; one wrapper enforces.

The same declarations generate ``/openapi.json``, so the document cannot drift from the routes:
bodies and queries are validated against the declared models, and responses are checked to be
instances of the declared response model before they are serialised.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from coordinator.appkeys import KEYRING_KEY, SETTINGS_KEY
from coordinator.auth import Principal, authenticate
from coordinator.errors import request_id
from coordinator.origin import require_own_origin
from coordinator.secrets import Keyring
from coordinator.token_streams import TOKEN_STREAMS_KEY
from shared.errors import InvalidRequest, PlatformError, RequestTimeout
from shared.wire import dump_json, load_json

M = TypeVar("M", bound=BaseModel)


@dataclass
class Call:
    """One API call as a handler sees it: principal, validated inputs, path parameters."""

    request: web.Request
    principal: Principal | None
    path: dict[str, str]
    _body: BaseModel | None
    _query: BaseModel | None

    @property
    def request_id(self) -> str:
        """The request's ``X-Request-ID``."""
        return request_id(self.request)

    @property
    def keyring(self) -> Keyring:
        """The coordinator's secret keyring."""
        return self.request.app[KEYRING_KEY]

    @property
    def actor(self) -> Principal:
        """The authenticated principal (routes with a permission always have one)."""
        if self.principal is None:
            raise PlatformError("route has no principal")
        return self.principal

    def body(self, model: type[M]) -> M:
        """Return the validated body, typed as its declared model."""
        if not isinstance(self._body, model):
            raise PlatformError("route body model mismatch")
        return self._body

    def query(self, model: type[M]) -> M:
        """Return the validated query, typed as its declared model."""
        if not isinstance(self._query, model):
            raise PlatformError("route query model mismatch")
        return self._query


Handler = Callable[[Call], Awaitable[BaseModel | web.StreamResponse | None]]


@dataclass(frozen=True)
class Route:
    """A route's declaration: everything the wrapper and the OpenAPI document need."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    permission: str | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    raw_response: str | None


ROUTES: list[Route] = []


def route(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    permission: str | None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    raw_response: str | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler. ``permission=None`` marks a public route (documented as such)."""

    def register(handler: Handler) -> Handler:
        ROUTES.append(
            Route(
                method,
                path,
                handler,
                summary,
                tag,
                permission,
                body,
                query,
                response,
                status,
                raw_response,
            )
        )
        return handler

    return register


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    # A body trickled in slowly must not hold the connection (coordinator/connguard.py).
    try:
        async with asyncio.timeout(request.app[SETTINGS_KEY].body_read_timeout_seconds):
            raw_text = await request.text()
    except TimeoutError as exc:
        raise RequestTimeout("the request body did not arrive in time") from exc
    try:
        raw: Any = load_json(raw_text) if raw_text.strip() else {}
    except ValueError as exc:
        raise InvalidRequest("request body is not valid JSON") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(
            "request body is invalid", details={"problems": _problems(exc)}
        ) from exc


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        raw[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(
            "query parameters are invalid", details={"problems": _problems(exc)}
        ) from exc


def build_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a declared handler with authentication, validation and serialisation."""

    async def handle(request: web.Request) -> web.StreamResponse:
        principal: Principal | None = None
        if route.raw_response == "text/event-stream":
            require_own_origin(request)  # as for websockets: no page from elsewhere may listen
        if route.permission is not None:
            principal = await authenticate(request)
            principal.require(route.permission)
        query = _parse_query(request, route.query) if route.query else None
        body = await _parse_body(request, route.body) if route.body else None
        call = Call(request, principal, dict(request.match_info), body, query)
        if principal is not None and route.raw_response == "text/event-stream":
            # Authorized once at the start: the stream ends when its token stops working.
            with request.app[TOKEN_STREAMS_KEY].watching(request, principal):
                result = await route.handler(call)
        else:
            result = await route.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        if route.response is None:
            return web.Response(status=route.status, text="null", content_type="application/json")
        if not isinstance(result, route.response):
            raise PlatformError("handler returned an undeclared response type")
        return web.Response(
            status=route.status, text=dump_json(result), content_type="application/json"
        )

    return handle
