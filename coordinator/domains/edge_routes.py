"""The resource's domain bindings as the edge routes a deployment plan carries to the agent."""

from coordinator.db import models
from coordinator.db.certificate_models import Certificate
from coordinator.dns01.serving import covered_names, covers
from shared.messages.deploy import DomainRoute


def acme_eligible(binding: models.DomainBinding) -> bool:
    """Only a binding whose ownership is proven (or confirmed by hand) gets ACME issuance."""
    return binding.tls_mode == "auto" and binding.ownership_confirmed_at is not None


def _edge_tls_mode(binding: models.DomainBinding, imported: set[str], wildcards: list[str]) -> str:
    # A name with an imported certificate is served with it (Caddy orders nothing for a name
    # whose certificate is loaded). Otherwise an unproven name is served on plain HTTP only:
    # on the HTTPS server Caddy would ask the CA for a certificate for a name nobody has shown
    # they control; and ``imported`` without a certificate has nothing to serve HTTPS with.
    if binding.id in imported and binding.tls_mode != "disabled":
        return "imported"
    # A name under an active wildcard certificate (DNS-01, docs/dns01.md) is served with it.
    if binding.tls_mode != "disabled" and covers(wildcards, binding.domain_name):
        return "imported"
    if binding.tls_mode == "auto" and acme_eligible(binding):
        return "auto"
    return "disabled"


async def domain_routes(resource_id: str, server_id: str) -> list[DomainRoute]:
    """Bindings of the resource on ``server_id`` (or on no server yet), oldest first.

    A binding still waiting for an HTTP-token proof carries its token so the edge can serve it,
    and is served over plain HTTP until its ownership is proven (no ACME order for it).
    """
    rows = await models.DomainBinding.filter(resource_id=resource_id).order_by("created_at", "id")
    imported = {
        str(b)
        for b in await Certificate.filter(
            domain_binding_id__in=[r.id for r in rows], source="imported", status="active"
        ).values_list("domain_binding_id", flat=True)
    }
    wildcards = (
        await covered_names(rows[0].organization_id)  # type: ignore[attr-defined]
        if rows
        else []
    )
    routes: list[DomainRoute] = []
    for row in rows:
        if row.server_id is not None and row.server_id != server_id:
            continue  # bound to another server: its edge answers for this name
        proving = row.ownership_method == "http-token" and row.ownership_confirmed_at is None
        routes.append(
            DomainRoute(
                id=row.id,
                domain_name=row.domain_name,
                path_prefix=row.path_prefix,
                redirect_to=row.redirect_to,
                redirect_status=row.redirect_status,
                tls_mode=_edge_tls_mode(row, imported, wildcards),  # type: ignore[arg-type]
                ownership_token=row.ownership_token if proving else None,
            )
        )
    return routes


async def record_routed(
    resource_id: str, server_id: str, deployment_id: str, routed: list[str] | None
) -> None:
    """Store what the agent's edge serves after a successful deployment of the resource.

    Only the resource's newest deployment counts (a late result of an older one must not mark
    a binding added since as ready); ``None`` (an older agent) leaves readiness unknown.
    """
    if routed is None:
        return
    newest = await models.Deployment.filter(resource_id=resource_id).order_by("-id").first()
    if newest is None or newest.id != deployment_id:
        return
    served = set(routed)
    for route in await domain_routes(resource_id, server_id):
        await models.DomainBinding.filter(id=route.id).update(
            proxy_readiness="ready" if route.id in served else "not-ready"
        )
