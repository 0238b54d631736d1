"""Default access domain policies: stored per organization (system) or per server, audited,
and resolved into the generated host name a resource gets on a server."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.default_access_models import DefaultAccessPolicy
from coordinator.domains.names import MAX_LABEL, MAX_NAME, normalize_domain
from coordinator.ids import new_id
from coordinator.lookup import get_server
from shared.errors import Conflict, InvalidRequest
from shared.messages.deploy import DomainRoute

ScopeKind = Literal["system", "deployment-target"]
Mode = Literal["disabled", "custom"]
TlsMode = Literal["on-demand", "certificate", "disabled"]

DEFAULT_ACCESS_ROUTE_ID: Final = "default-access"
"""The id of the generated route among a resource's edge domain routes (bindings use ``dbn_``)."""
TEMPLATE_REF: Final = "berth-flat/v1"
"""The host name scheme: ``<resource>-<environment>-<project>.<baseDomain>`` (one label under
the base, so a wildcard certificate ``*.<baseDomain>`` covers every generated name)."""
PROVIDER_KEY: Final = "caddy"


@dataclass(frozen=True)
class EffectivePolicy:
    """What a server's resources get: the generated names' base domain and how TLS is served."""

    policy_id: str
    base_domain: str
    tls_mode: TlsMode


def _scope_key(kind: ScopeKind, server_id: str | None) -> str:
    return "system" if kind == "system" else f"server:{server_id}"


def _bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}", details={"problems": [{"field": field, "message": message}]}
    )


def generated_label(resource_slug: str, environment_slug: str, project_slug: str) -> str:
    """``web-production-shop``; too long for one DNS label (63): cut, with a hash that keeps
    two long names apart."""
    label = f"{resource_slug}-{environment_slug}-{project_slug}".strip("-")
    if len(label) <= MAX_LABEL:
        return label
    digest = hashlib.sha256(label.encode()).hexdigest()[:8]
    return f"{label[: MAX_LABEL - 9].rstrip('-')}-{digest}"


def generated_hostname(
    resource_slug: str, environment_slug: str, project_slug: str, base_domain: str
) -> str:
    """The default access host name of a resource under ``base_domain``."""
    return f"{generated_label(resource_slug, environment_slug, project_slug)}.{base_domain}"


async def configure(
    actor: Principal,
    request_id: str,
    *,
    scope_kind: ScopeKind,
    server_id: str | None,
    mode: Mode,
    base_domain: str | None,
    tls_mode: TlsMode,
) -> DefaultAccessPolicy:
    """Create or replace the policy of one scope; another tenant's server is a 404."""
    if scope_kind == "deployment-target":
        if not server_id:
            raise _bad("scope.serverId", "a deployment-target policy names its server")
        server_id = (await get_server(actor, server_id)).id
    elif server_id is not None:
        raise _bad("scope.serverId", "a system policy applies to every server: omit serverId")
    if mode == "custom" and not base_domain:
        raise _bad("baseDomain", "mode custom needs the base domain of the generated names")
    if base_domain is not None:
        try:
            base_domain = normalize_domain(base_domain)
        except InvalidRequest as exc:
            raise _bad("baseDomain", exc.message) from exc
        if len(base_domain) > MAX_NAME - MAX_LABEL - 1:
            # Room for a full generated label in front: a host name has at most 253 characters.
            raise _bad("baseDomain", f"longer than {MAX_NAME - MAX_LABEL - 1} characters")
    now = datetime.now(UTC)
    key = _scope_key(scope_kind, server_id)
    values: dict[str, object] = {
        "scope_kind": scope_kind,
        "server_id": server_id,
        "mode": mode,
        "base_domain": base_domain,
        "tls_mode": tls_mode,
        "updated_at": now,
    }
    try:
        async with in_transaction():
            row = await DefaultAccessPolicy.get_or_none(
                organization_id=actor.organization_id, scope_key=key
            )
            if row is None:
                row = DefaultAccessPolicy(
                    id=new_id("dap"),
                    organization_id=actor.organization_id,
                    scope_key=key,
                    created_at=now,
                )
            await row.update_from_dict(values).save()
            await audit.record(
                actor=actor,
                event_type="default-access-domain-policy.configured",
                aggregate_type="default-access-domain-policy",
                aggregate_id=row.id,
                payload={
                    "scope": {"kind": scope_kind, "serverId": server_id},
                    "mode": mode,
                    "baseDomain": base_domain,
                    "tlsMode": tls_mode,
                },
                request_id=request_id,
            )
    except IntegrityError as exc:  # two first writes of one scope at once
        raise Conflict("the policy was changed concurrently; try again") from exc
    return row


def _visible(actor: Principal, row: DefaultAccessPolicy) -> bool:
    return row.server_id is None or actor.can_see_server(row.server_id)


async def policies(actor: Principal) -> list[DefaultAccessPolicy]:
    """The organization's policies the caller may see, the system one first."""
    rows = await DefaultAccessPolicy.filter(organization_id=actor.organization_id).order_by(
        "scope_key"
    )
    return sorted((r for r in rows if _visible(actor, r)), key=lambda r: r.scope_key != "system")


async def policy_of(
    actor: Principal, scope_kind: ScopeKind, server_id: str | None
) -> DefaultAccessPolicy | None:
    """The stored policy of one scope (None: never configured)."""
    if scope_kind == "deployment-target":
        if not server_id:
            raise _bad("serverId", "scopeKind deployment-target needs serverId")
        server_id = (await get_server(actor, server_id)).id
    return await DefaultAccessPolicy.get_or_none(
        organization_id=actor.organization_id, scope_key=_scope_key(scope_kind, server_id)
    )


async def effective(organization_id: str, server_id: str) -> EffectivePolicy | None:
    """The policy a server's resources follow: its own, else the system one; None when that
    is disabled or missing."""
    rows = {
        r.scope_key: r
        for r in await DefaultAccessPolicy.filter(
            organization_id=organization_id, scope_key__in=["system", f"server:{server_id}"]
        )
    }
    row = rows.get(f"server:{server_id}") or rows.get("system")
    if row is None or row.mode != "custom" or not row.base_domain:
        return None
    return EffectivePolicy(row.id, row.base_domain, row.tls_mode)  # type: ignore[arg-type]


def default_access_routes(planned: object, path_prefix: str = "/") -> list[DomainRoute]:
    """The edge route of a deployment's generated default-access name (its snapshot's
    ``defaultAccess``), served like a domain binding: HTTPS (with an on-demand certificate, or
    only with the wildcard certificate the edge holds) and HTTP redirecting there, or plain
    HTTP when the policy's TLS is off."""
    if not isinstance(planned, dict) or not planned.get("hostname"):
        return []
    mode = planned.get("tlsMode")
    https = mode in ("on-demand", "certificate")
    return [
        DomainRoute(
            id=DEFAULT_ACCESS_ROUTE_ID,
            domain_name=str(planned["hostname"]),
            path_prefix=path_prefix,
            tls_mode="auto" if https else "disabled",
            on_demand=https,
            certificate_only=mode == "certificate",
        )
    ]
