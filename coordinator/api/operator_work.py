"""Operator work ledger routes (``operator-work.*``): list, show, cancel, retry, dead-letter,
mark-recovered and prune across every registered kind of background work."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from coordinator.api import timestamps
from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest, NoQuery
from coordinator.api.timestamps import UtcTimestamp
from coordinator.operator_work import kinds
from shared.wire import WireModel

TAG = "operator-work"
PrunableStatus = Literal["succeeded", "failed", "canceled", "dead-lettered"]


class WorkQuery(ApiRequest):
    """Filters of ``GET /operator-work``."""

    kind: kinds.WorkKind | None = None
    status: kinds.WorkStatus | None = None
    resource_id: str | None = Field(default=None, max_length=40)
    server_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    limit: int = Field(default=100, gt=0, le=500)


class WorkItemView(WireModel):
    """One item in the reference shape."""

    id: str
    kind: kinds.WorkKind
    status: kinds.WorkStatus
    operation_key: str
    phase: str | None
    step: str | None
    project_id: str | None
    resource_id: str | None
    deployment_id: str | None
    server_id: str | None
    domain_binding_id: str | None
    certificate_id: str | None
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    error_code: str | None
    error_category: str | None
    retriable: bool
    next_actions: list[str]
    safe_details: dict[str, str]


class WorkList(WireModel):
    """``operator-work.list/v1``."""

    schema_version: Literal["operator-work.list/v1"] = "operator-work.list/v1"
    items: list[WorkItemView]
    generated_at: datetime


class WorkShow(WireModel):
    """``operator-work.show/v1``."""

    schema_version: Literal["operator-work.show/v1"] = "operator-work.show/v1"
    item: WorkItemView
    generated_at: datetime


class WorkReasonRequest(ApiRequest):
    """Why (kept in the audit trail)."""

    reason: str | None = Field(default=None, max_length=500)


class DeadLetterRequest(ApiRequest):
    """Why the work is given up on."""

    reason: str = Field(min_length=1, max_length=500)


class WorkEmptyBody(ApiRequest):
    """No fields."""


class RecoveredResponse(WireModel):
    """mark-recovered's answer."""

    work_id: str
    status: Literal["succeeded"] = "succeeded"
    recovered_at: datetime


class DeadLetteredResponse(WireModel):
    """dead-letter's answer."""

    work_id: str
    status: Literal["dead-lettered"] = "dead-lettered"
    dead_lettered_at: datetime


class CanceledResponse(WireModel):
    """cancel's answer."""

    work_id: str
    status: Literal["canceled"] = "canceled"
    canceled_at: datetime


class RetriedResponse(WireModel):
    """retry's answer: the new work item (``workId``) retries ``retryOfWorkId``."""

    work_id: str
    status: Literal["pending"] = "pending"
    retry_of_work_id: str
    retried_at: datetime


class WorkPruneRequest(ApiRequest):
    """``POST /operator-work/prune``."""

    before: UtcTimestamp
    statuses: list[PrunableStatus] = Field(default=["succeeded"], min_length=1)
    dry_run: bool = False


class WorkCountsByStatus(WireModel):
    """How many of each status matched."""

    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    dead_lettered: int = Field(default=0, alias="dead-lettered")


class WorkPruneResponse(WireModel):
    """The prune report (the reference gives it no schemaVersion)."""

    pruned_count: int
    matched_count: int
    dry_run: bool
    before: str
    statuses: list[str]
    counts_by_status: WorkCountsByStatus
    pruned_at: datetime


def view(item: kinds.WorkItem) -> WorkItemView:
    """The wire view of a ledger item."""
    return WorkItemView(
        id=item.id,
        kind=item.kind,
        status=item.status,
        operation_key=item.operation_key,
        phase=item.phase,
        step=item.step,
        project_id=item.refs.get("projectId"),
        resource_id=item.refs.get("resourceId"),
        deployment_id=item.refs.get("deploymentId"),
        server_id=item.refs.get("serverId"),
        domain_binding_id=item.refs.get("domainBindingId"),
        certificate_id=item.refs.get("certificateId"),
        started_at=item.started_at,
        updated_at=item.updated_at,
        finished_at=item.finished_at,
        error_code=item.error_code,
        error_category=item.error_category,
        retriable=item.retriable,
        next_actions=item.next_actions,
        safe_details=item.safe_details,
    )


def _work(call: Call) -> tuple[str, kinds.WorkSource]:
    """The path's ``workId`` and the kind of work that owns it (unknown kind: 404)."""
    work_id = call.path["workId"]
    return work_id, kinds.owner(work_id)


@route(
    "GET",
    "/operator-work",
    summary="List Berth's background work: status, phase, errors and next actions",
    tag=TAG,
    permission="operator-work:read",
    query=WorkQuery,
    response=WorkList,
)
async def list_work(call: Call) -> WorkList:
    """Most recently updated first, across every kind (or one ``kind``)."""
    query = call.query(WorkQuery)
    filters = kinds.WorkFilters(
        kind=query.kind,
        status=query.status,
        resource_id=query.resource_id,
        server_id=query.server_id,
        deployment_id=query.deployment_id,
        limit=query.limit,
    )
    items = await kinds.gather(call.actor, filters)
    return WorkList(items=[view(i) for i in items], generated_at=datetime.now(UTC))


@route(
    "GET",
    "/operator-work/{workId}",
    summary="Show one piece of background work",
    tag=TAG,
    permission="operator-work:read",
    query=NoQuery,
    response=WorkShow,
)
async def show_work(call: Call) -> WorkShow:
    """404 for another organization's work or one outside the token's scope."""
    work_id, owner = _work(call)
    item = await owner.get(call.actor, work_id)
    return WorkShow(item=view(item), generated_at=datetime.now(UTC))


@route(
    "POST",
    "/operator-work/{workId}/cancel",
    summary="Cancel pending or running work",
    tag=TAG,
    permission="operator-work:write",
    body=WorkReasonRequest,
    response=CanceledResponse,
)
async def cancel_work(call: Call) -> CanceledResponse:
    """409 when the work is finished; the kind's own permission is needed too."""
    work_id, owner = _work(call)
    at = await owner.cancel(call, work_id, call.body(WorkReasonRequest).reason)
    return CanceledResponse(work_id=work_id, canceled_at=at)


@route(
    "POST",
    "/operator-work/{workId}/retry",
    summary="Retry failed or canceled work as a new work item",
    tag=TAG,
    permission="operator-work:write",
    body=WorkEmptyBody,
    response=RetriedResponse,
)
async def retry_work(call: Call) -> RetriedResponse:
    """The answer's ``workId`` is the new item."""
    work_id, owner = _work(call)
    new_id = await owner.retry(call, work_id)
    return RetriedResponse(work_id=new_id, retry_of_work_id=work_id, retried_at=datetime.now(UTC))


@route(
    "POST",
    "/operator-work/{workId}/dead-letter",
    summary="Give up on work for good (kept, never retried by itself)",
    tag=TAG,
    permission="operator-work:write",
    body=DeadLetterRequest,
    response=DeadLetteredResponse,
)
async def dead_letter_work(call: Call) -> DeadLetteredResponse:
    """409 for kinds that cannot be dead-lettered (deployments)."""
    work_id, owner = _work(call)
    at = await owner.dead_letter(call, work_id, call.body(DeadLetterRequest).reason)
    return DeadLetteredResponse(work_id=work_id, dead_lettered_at=at)


@route(
    "POST",
    "/operator-work/{workId}/mark-recovered",
    summary="Record that failed work was recovered by other means",
    tag=TAG,
    permission="operator-work:write",
    body=WorkEmptyBody,
    response=RecoveredResponse,
)
async def mark_recovered(call: Call) -> RecoveredResponse:
    """409 for kinds whose success only the work itself can prove (deployments)."""
    work_id, owner = _work(call)
    at = await owner.mark_recovered(call, work_id)
    return RecoveredResponse(work_id=work_id, recovered_at=at)


@route(
    "POST",
    "/operator-work/prune",
    summary="Dry-run or remove finished work items older than a time",
    tag=TAG,
    permission="operator-work:write",
    body=WorkPruneRequest,
    response=WorkPruneResponse,
)
async def prune_work(call: Call) -> WorkPruneResponse:
    """Finished items only; deployments are history (``POST /deployments/prune``)."""
    body = call.body(WorkPruneRequest)
    before = timestamps.parse(body.before)
    totals: dict[str, int] = {}
    for source in kinds.sources():
        counts = await source.prune(call.actor, before, frozenset(body.statuses), body.dry_run)
        for status, count in counts.items():
            totals[status] = totals.get(status, 0) + count
    matched = sum(totals.values())
    return WorkPruneResponse(
        pruned_count=0 if body.dry_run else matched,
        matched_count=matched,
        dry_run=body.dry_run,
        before=body.before,
        statuses=list(body.statuses),
        counts_by_status=WorkCountsByStatus.model_validate(totals),
        pruned_at=datetime.now(UTC),
    )
