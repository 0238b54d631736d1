"""Access-failure evidence: agents report requests their edge could not serve; kept briefly.

A visitor's error page shows a request id; ``GET /resource-access-failures/{requestId}`` finds
the evidence (``resource-access-failure/v1``) while it is retained (``RETENTION``). A report
names resources and bindings as the agent saw them: ids that are not the server's
organization's are dropped, so an agent cannot attach evidence to another tenant's resource.
"""

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from tortoise.exceptions import IntegrityError

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.edge_models import AccessFailureEvidence
from coordinator.lookup import get_resource, get_server
from shared.errors import NotFound
from shared.messages.edge import AccessFailure, AccessFailureReport
from shared.wire import WireModel

logger = logging.getLogger(__name__)

RETENTION: Final = timedelta(hours=24)
PRUNE_EVERY_SECONDS: Final = 60.0
PROVIDER_KEY: Final = "caddy"

# code -> category, phase, retriable, ownerHint, nextAction, routeStatus
_MEANING: Final[dict[str, tuple[str, str, bool, str, str, str]]] = {
    "resource_access_route_not_found": (
        "infra",
        "edge-request-routing",
        False,
        "platform",
        "check-domain-binding",
        "not-found",
    ),
    "resource_access_resource_stopped": (
        "runtime",
        "runtime-state",
        True,
        "resource-owner",
        "start-resource",
        "stopped",
    ),
    "resource_access_upstream_unavailable": (
        "runtime",
        "upstream-connection",
        True,
        "resource-owner",
        "check-health",
        "unreachable",
    ),
    "resource_access_upstream_timeout": (
        "runtime",
        "upstream-response",
        True,
        "resource-owner",
        "check-health",
        "timed-out",
    ),
    "resource_access_edge_error": ("infra", "edge-proxy", True, "platform", "retry", "unknown"),
}


class AffectedRequest(WireModel):
    """The request the visitor made."""

    url: str
    hostname: str
    path: str
    method: str


class FailedRoute(WireModel):
    """The route the request took (ids are null where the edge had none)."""

    host: str
    path_prefix: str | None
    resource_id: str | None
    deployment_id: str | None
    domain_binding_id: str | None
    server_id: str
    destination_id: str | None = None
    provider_key: str = PROVIDER_KEY
    route_id: str | None
    diagnostic_id: str | None = None
    route_source: Literal["generated-default", "durable-domain", "none"]
    route_status: str


class ResourceAccessFailure(WireModel):
    """``resource-access-failure/v1``."""

    schema_version: Literal["resource-access-failure/v1"] = "resource-access-failure/v1"
    request_id: str
    generated_at: datetime
    code: str
    category: str
    phase: str
    http_status: int
    retriable: bool
    owner_hint: str
    next_action: str
    affected: AffectedRequest
    route: FailedRoute
    cause_code: str | None
    correlation_id: str
    causation_id: str | None = None


def cause_code(cause: str) -> str | None:
    """A stable code for the proxy's error text (the text itself may name internal addresses)."""
    text = cause.lower()
    for needle, code in (
        ("connection refused", "connection-refused"),
        ("no such host", "dns-lookup-failed"),
        ("timeout", "timeout"),
        ("connection reset", "connection-reset"),
        ("berth: the resource is stopped", "resource-stopped"),
        ("berth: no route", "no-route"),
    ):
        if needle in text:
            return code
    return None


async def _owned_ids(
    organization_id: str, failure: AccessFailure
) -> tuple[str | None, str | None, str | None]:
    """The resource, binding and latest deployment ids the report may name (else None)."""
    resource_id = failure.resource_id
    if (
        resource_id is not None
        and not await models.Resource.filter(
            id=resource_id, project__organization_id=organization_id
        ).exists()
    ):
        resource_id = None
    binding_id = failure.domain_binding_id
    if binding_id is not None and (
        resource_id is None
        or not await models.DomainBinding.filter(id=binding_id, resource_id=resource_id).exists()
    ):
        binding_id = None
    deployment_id = None
    if resource_id is not None:
        latest = (
            await models.Deployment.filter(resource_id=resource_id, status="succeeded")
            .order_by("-created_at")
            .first()
            .values_list("id", flat=True)
        )
        deployment_id = str(latest) if latest else None
    return resource_id, binding_id, deployment_id


async def evidence_of(
    server_id: str, organization_id: str, failure: AccessFailure
) -> ResourceAccessFailure:
    """The reference's evidence document for one reported failure."""
    category, phase, retriable, owner, next_action, status = _MEANING[failure.code]
    resource_id, binding_id, deployment_id = await _owned_ids(organization_id, failure)
    source: Literal["generated-default", "durable-domain", "none"] = (
        "durable-domain" if binding_id else "generated-default" if resource_id else "none"
    )
    path_prefix = None
    if binding_id is not None:
        path_prefix = (
            await models.DomainBinding.filter(id=binding_id)
            .first()
            .values_list("path_prefix", flat=True)
        )
    return ResourceAccessFailure(
        request_id=failure.request_id,
        generated_at=failure.observed_at,
        code=failure.code,
        category=category,
        phase=phase,
        http_status=failure.http_status,
        retriable=retriable,
        owner_hint=owner,
        next_action=next_action,
        affected=AffectedRequest(
            url=f"{failure.scheme}://{failure.hostname}{failure.path}",
            hostname=failure.hostname,
            path=failure.path.partition("?")[0],
            method=failure.method,
        ),
        route=FailedRoute(
            host=failure.hostname,
            path_prefix=str(path_prefix) if path_prefix is not None else None,
            resource_id=resource_id,
            deployment_id=deployment_id,
            domain_binding_id=binding_id,
            server_id=server_id,
            route_id=failure.route_id if resource_id else None,
            route_source=source,
            route_status=status,
        ),
        cause_code=cause_code(failure.cause),
        correlation_id=failure.request_id,
    )


class AccessFailureStore:
    """Stores the failures of ``access_failures`` reports; prunes expired ones now and then."""

    def __init__(self, retention: timedelta = RETENTION) -> None:
        self.retention = retention
        self._organizations: dict[str, str | None] = {}
        self._next_prune = 0.0
        self.stored_total = 0

    async def receive(self, server_id: str, report: AccessFailureReport) -> None:
        """Store a report's failures (a request id already stored is kept as it was)."""
        organization_id = await self._organization_of(server_id)
        if organization_id is None:
            return  # the server was deleted while its agent was still connected
        for failure in report.failures:
            await self.store(server_id, organization_id, failure)
        await self._prune_now_and_then()

    async def _organization_of(self, server_id: str) -> str | None:
        if server_id not in self._organizations:
            row = await models.Server.get_or_none(id=server_id).values("organization_id")
            self._organizations[server_id] = str(row["organization_id"]) if row else None
        return self._organizations[server_id]

    async def store(self, server_id: str, organization_id: str, failure: AccessFailure) -> None:
        """Keep one failure's evidence until it expires."""
        evidence = await evidence_of(server_id, organization_id, failure)
        now = datetime.now(UTC)
        try:
            _ = await AccessFailureEvidence.create(
                request_id=failure.request_id,
                organization_id=organization_id,
                server_id=server_id,
                resource_id=evidence.route.resource_id,
                hostname=failure.hostname,
                path=evidence.affected.path[:2048],
                captured_at=now,
                expires_at=now + self.retention,
                evidence=evidence.model_dump(mode="json", by_alias=True),
            )
        except IntegrityError:
            return  # reported twice (or a forged id): the first report stands
        self.stored_total += 1

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        removed = await AccessFailureEvidence.filter(expires_at__lte=datetime.now(UTC)).delete()
        if removed:
            logger.info("removed %d expired access failure records", removed)


async def find(
    actor: Principal,
    request_id: str,
    *,
    resource_id: str | None = None,
    hostname: str | None = None,
    path: str | None = None,
) -> AccessFailureEvidence:
    """The caller's unexpired evidence for ``request_id`` matching the filters, else 404.

    Another organization's evidence, a server or resource the caller may not see, and expired
    evidence all look missing.
    """
    row = await AccessFailureEvidence.get_or_none(
        request_id=request_id,
        organization_id=actor.organization_id,
        expires_at__gt=datetime.now(UTC),
    )
    missing = NotFound(f"no access failure evidence for request {request_id!r}")
    if row is None:
        raise missing
    try:
        _ = await get_server(actor, row.server_id)
        if row.resource_id is not None:
            _ = await get_resource(actor, row.resource_id)
    except NotFound:
        raise missing from None
    if resource_id is not None and row.resource_id != resource_id:
        raise missing
    if hostname is not None and row.hostname.lower() != hostname.lower():
        raise missing
    if path is not None and row.path != path:
        raise missing
    return row


async def latest_by_resource(resource_ids: list[str]) -> dict[str, ResourceAccessFailure]:
    """Each resource's newest unexpired access failure (resources without one are absent).

    The ids come from the caller's scoped lookups; evidence names a resource only when it is
    the reporting server's organization's (``_owned_ids``).
    """
    if not resource_ids:
        return {}
    rows = await AccessFailureEvidence.filter(
        resource_id__in=resource_ids, expires_at__gt=datetime.now(UTC)
    ).order_by("-captured_at", "-request_id")
    latest: dict[str, ResourceAccessFailure] = {}
    for row in rows:
        if row.resource_id is not None and row.resource_id not in latest:
            latest[row.resource_id] = ResourceAccessFailure.model_validate(row.evidence)
    return latest
