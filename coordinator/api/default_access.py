"""Default access domain policy routes: list, show one scope, configure (audited)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator import audit_scope, default_access
from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest, IdResponse
from coordinator.db.default_access_models import DefaultAccessPolicy
from shared.errors import Forbidden
from shared.wire import WireModel

TAG = "default-access"


class PolicyScope(ApiRequest):
    """The whole organization (``system``) or one server (``deployment-target``)."""

    kind: default_access.ScopeKind = "system"
    server_id: str | None = Field(default=None, min_length=1, max_length=40)


class PolicyView(WireModel):
    """``default-access-domain-policies.policy/v1``; ``baseDomain`` and ``tlsMode`` are
    Berth's: the generated names' parent domain and how their HTTPS is served."""

    schema_version: Literal["default-access-domain-policies.policy/v1"] = (
        "default-access-domain-policies.policy/v1"
    )
    id: str
    scope: PolicyScope
    mode: default_access.Mode
    provider_key: str = default_access.PROVIDER_KEY
    template_ref: str = default_access.TEMPLATE_REF
    base_domain: str | None
    tls_mode: default_access.TlsMode
    updated_at: datetime


class PolicyList(WireModel):
    """``default-access-domain-policies.list/v1``."""

    schema_version: Literal["default-access-domain-policies.list/v1"] = (
        "default-access-domain-policies.list/v1"
    )
    items: list[PolicyView]


class PolicyShow(WireModel):
    """``default-access-domain-policies.show/v1``: ``policy`` is null when the scope has none."""

    schema_version: Literal["default-access-domain-policies.show/v1"] = (
        "default-access-domain-policies.show/v1"
    )
    scope: PolicyScope
    policy: PolicyView | None


class ListQuery(ApiRequest):
    """No filters: the organization's policies the caller may see."""


class ShowQuery(ApiRequest):
    """Which scope to read (``serverId`` with ``deployment-target``)."""

    scope_kind: default_access.ScopeKind = "system"
    server_id: str | None = Field(default=None, min_length=1, max_length=40)


class ConfigureRequest(ApiRequest):
    """Create or replace one scope's policy. ``providerKey`` (``caddy``) and ``templateRef``
    (``berth-flat/v1``) are the only ones Berth has."""

    scope: PolicyScope
    mode: default_access.Mode
    provider_key: Literal["caddy"] | None = None
    template_ref: Literal["berth-flat/v1"] | None = None
    base_domain: str | None = Field(default=None, min_length=1, max_length=253)
    tls_mode: default_access.TlsMode = "on-demand"


def policy_view(row: DefaultAccessPolicy) -> PolicyView:
    """The wire view of a stored policy."""
    return PolicyView(
        id=row.id,
        scope=PolicyScope(kind=row.scope_kind, server_id=row.server_id),  # type: ignore[arg-type]
        mode=row.mode,  # type: ignore[arg-type]
        base_domain=row.base_domain,
        tls_mode=row.tls_mode,  # type: ignore[arg-type]
        updated_at=row.updated_at,
    )


@route(
    "GET",
    "/default-access-domain-policies",
    summary="List default access domain policies (the system one and per server)",
    tag=TAG,
    permission="servers:read",
    query=ListQuery,
    response=PolicyList,
)
async def list_policies(call: Call) -> PolicyList:
    """Policies of servers outside the caller's scope are left out."""
    _ = call.query(ListQuery)
    return PolicyList(items=[policy_view(r) for r in await default_access.policies(call.actor)])


@route(
    "GET",
    "/default-access-domain-policies/show",
    summary="Show the default access domain policy of one scope",
    tag=TAG,
    permission="servers:read",
    query=ShowQuery,
    response=PolicyShow,
)
async def show_policy(call: Call) -> PolicyShow:
    """Another organization's or an out-of-scope server is a 404."""
    query = call.query(ShowQuery)
    row = await default_access.policy_of(call.actor, query.scope_kind, query.server_id)
    return PolicyShow(
        scope=PolicyScope(
            kind=query.scope_kind,
            server_id=query.server_id if query.scope_kind == "deployment-target" else None,
        ),
        policy=policy_view(row) if row is not None else None,
    )


@route(
    "POST",
    "/default-access-domain-policies",
    summary="Configure generated access host names (base domain, TLS) for the system or a server",
    tag=TAG,
    permission="servers:write",
    body=ConfigureRequest,
    response=IdResponse,
    events=("default-access-domain-policy.configured",),
)
async def configure_policy(call: Call) -> IdResponse:
    """Takes effect at each resource's next deployment on the servers it covers."""
    body = call.body(ConfigureRequest)
    if body.scope.kind == "system" and audit_scope.is_scoped(call.actor):
        raise Forbidden(
            "the system policy covers every server; use a token without project, "
            "environment, resource or server limits"
        )
    row = await default_access.configure(
        call.actor,
        call.request_id,
        scope_kind=body.scope.kind,
        server_id=body.scope.server_id,
        mode=body.mode,
        base_domain=body.base_domain,
        tls_mode=body.tls_mode,
    )
    return IdResponse(id=row.id)
