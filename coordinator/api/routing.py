"""Declarative routes: one decorator declares path, permission and models; one wrapper enforces.

The same declarations generate ``/openapi.json``, so the document cannot drift from the routes:
bodies and queries are validated against the declared models, and responses are checked to be
instances of the declared response model before they are serialised.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from coordinator.appkeys import KEYRING_KEY, SETTINGS_KEY
from coordinator.auth import Principal, authenticate
from coordinator.errors import request_id
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from coordinator.origin import require_own_origin
from coordinator.secrets import Keyring
from coordinator.token_streams import TOKEN_STREAMS_KEY
from coordinator.variables import KEY_MAX_LENGTH, KEY_PATTERN
from shared.errors import InvalidRequest, NotFound, PlatformError, RequestTimeout
from shared.wire import dump_json, load_json

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class PathParameter:
    """What a path parameter may look like; checked before the handler runs, and documented."""

    pattern: str
    max_length: int
    # An id that cannot exist names nothing (404); a malformed key is a bad request (400).
    malformed_is_missing: bool

    def check(self, name: str, value: str) -> None:
        """Raise the 404 or 400 a value outside the rule gets (never let it reach the DB)."""
        if len(value) <= self.max_length and re.fullmatch(self.pattern, value):
            return
        if self.malformed_is_missing:
            raise NotFound(f"no such {name.removesuffix('Id')}")
        raise InvalidRequest(
            f"path parameter {name} is invalid",
            details={"problems": [{"field": name, "message": f"must match {self.pattern}"}]},
        )


# Ids are minted as ``<prefix>_<hex>`` and stored in 40-character columns.
_ID: Final = PathParameter(ID_PATTERN, ID_MAX_LENGTH, malformed_is_missing=True)
PATH_PARAMETERS: Final[dict[str, PathParameter]] = {
    "key": PathParameter(KEY_PATTERN, KEY_MAX_LENGTH, malformed_is_missing=False),
    **{
        name: _ID
        for name in (
            "archiveId",
            "deploymentId",
            "domainBindingId",
            "environmentId",
            "otherEnvironmentId",
            "projectId",
            "resourceId",
            "serverId",
            "sessionId",
            "tokenId",
            "planId",
            "dependencyResourceId",
            "bindingId",
            "storageVolumeId",
            "attachmentId",
            "certificateId",
            "taskId",
            "runId",
            "subscriptionId",
            "auditEventId",
            "workId",
            "dnsProviderId",
            "backupId",
            "policyId",
            "organizationId",
            "memberId",
            "invitationId",
            "backupTargetId",
        )
    },
    # The edge's request ids (Caddy's UUIDs) name access-failure evidence.
    "requestId": PathParameter(r"[A-Za-z0-9-]{8,64}", 64, malformed_is_missing=True),
}
# Retention categories are kebab-case words; anything else names no category.
PATH_PARAMETERS["category"] = PathParameter(r"^[a-z][a-z-]*$", 40, malformed_is_missing=True)
_PATH_NAME = re.compile(r"{([A-Za-z0-9_]+)}")


def path_names(path: str) -> list[str]:
    """The parameter names of a route path template, in order."""
    return _PATH_NAME.findall(path)


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
    # Statuses beyond the common ones (e.g. 503 when the route needs the agent's link, 401 on a
    # public route that checks its own credential) so the OpenAPI document declares them.
    errors: tuple[int, ...] = ()
    # Event names of a ``text/event-stream`` response (documented as the stream's item schema).
    events: tuple[str, ...] = ()


ROUTES: list[Route] = []
# What a route that needs the server's agent link can also answer: 503 while the agent is not
# connected, 504 when it does not answer in time.
AGENT_ERRORS: Final = (503, 504)


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
    errors: tuple[int, ...] = (),
    events: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register a handler. ``permission=None`` marks a public route (documented as such)."""

    def register(handler: Handler) -> Handler:
        unknown = [n for n in path_names(path) if n not in PATH_PARAMETERS]
        if unknown:  # every path parameter needs a rule, or it reaches the database unchecked
            raise PlatformError(f"route {method} {path}: no PATH_PARAMETERS rule for {unknown}")
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
                errors,
                events,
            )
        )
        return handler

    return register


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _refuse_nul(raw: Any, what: str) -> None:
    """Refuse U+0000 anywhere in the input: PostgreSQL cannot store it in text or JSON.

    Iterative, so deeply nested JSON cannot exhaust the interpreter's recursion limit.
    """
    problems: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack and len(problems) < 10:
        at, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                problems.append({"field": at or "(body)", "message": "contains U+0000 (NUL)"})
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{at}.{key}" if at else str(key)
                stack.append((name, item))
                if "\x00" in str(key):
                    problems.append({"field": name, "message": "name contains U+0000 (NUL)"})
        elif isinstance(value, list):
            stack.extend((f"{at}.{i}" if at else str(i), item) for i, item in enumerate(value))
    if problems:
        raise InvalidRequest(f"{what} may not contain U+0000 (NUL)", details={"problems": problems})


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    # A body trickled in slowly must not hold the connection (coordinator/connguard.py).
    try:
        async with asyncio.timeout(request.app[SETTINGS_KEY].body_read_timeout_seconds):
            raw_bytes = await request.read()
    except TimeoutError as exc:
        raise RequestTimeout("the request body did not arrive in time") from exc
    try:
        raw: Any = load_json(raw_bytes) if raw_bytes.strip() else {}
    except ValueError as exc:  # UnicodeDecodeError included: JSON is UTF-8 (RFC 8259)
        raise InvalidRequest("request body is not valid JSON") from exc
    _refuse_nul(raw, "the request body")
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
    _refuse_nul(raw, "query parameters")
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
            if principal.project_grants:  # per-project grants check the route's permission
                principal = replace(principal, acting_permission=route.permission)
        for name, value in request.match_info.items():
            PATH_PARAMETERS[name].check(name, value)
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
