"""``GET /resource-access-failures/{requestId}``: the evidence behind an edge error page."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest
from coordinator.edge import access_failures
from coordinator.edge.access_failures import ResourceAccessFailure
from shared.wire import WireModel

TAG = "resources"


class AccessFailureQuery(ApiRequest):
    """Optional filters: the evidence must also match them."""

    resource_id: str | None = Field(default=None, min_length=1, max_length=64)
    hostname: str | None = Field(default=None, min_length=1, max_length=255)
    path: str | None = Field(default=None, min_length=1, max_length=2048)


class LookupFilters(WireModel):
    """The filters as asked."""

    resource_id: str | None
    hostname: str | None
    path: str | None


class RelatedIds(WireModel):
    """Ids to follow from the evidence."""

    resource_id: str | None
    deployment_id: str | None
    domain_binding_id: str | None
    server_id: str
    destination_id: str | None = None
    route_id: str | None


class AccessFailureLookup(WireModel):
    """``resources.access-failure-evidence.lookup/v1``."""

    schema_version: Literal["resources.access-failure-evidence.lookup/v1"] = (
        "resources.access-failure-evidence.lookup/v1"
    )
    request_id: str
    generated_at: datetime
    filters: LookupFilters
    status: Literal["found"] = "found"
    matched_source: Literal["short-retention-evidence-read-model"] = (
        "short-retention-evidence-read-model"
    )
    evidence: ResourceAccessFailure
    related_ids: RelatedIds
    next_action: str
    captured_at: datetime
    expires_at: datetime


@route(
    "GET",
    "/resource-access-failures/{requestId}",
    summary="Look up the evidence of a request the edge could not serve, by its request id",
    tag=TAG,
    permission="resources:read",
    query=AccessFailureQuery,
    response=AccessFailureLookup,
)
async def lookup(call: Call) -> AccessFailureLookup:
    """404 when unknown, expired, filtered out or outside the caller's scope."""
    query = call.query(AccessFailureQuery)
    row = await access_failures.find(
        call.actor,
        call.path["requestId"],
        resource_id=query.resource_id,
        hostname=query.hostname,
        path=query.path,
    )
    evidence = ResourceAccessFailure.model_validate(row.evidence)
    return AccessFailureLookup(
        request_id=row.request_id,
        generated_at=datetime.now(UTC),
        filters=LookupFilters(
            resource_id=query.resource_id, hostname=query.hostname, path=query.path
        ),
        evidence=evidence,
        related_ids=RelatedIds(
            resource_id=evidence.route.resource_id,
            deployment_id=evidence.route.deployment_id,
            domain_binding_id=evidence.route.domain_binding_id,
            server_id=evidence.route.server_id,
            route_id=evidence.route.route_id,
        ),
        next_action=evidence.next_action,
        captured_at=row.captured_at,
        expires_at=row.expires_at,
    )
