"""Scoped lookups: load a row by id within the caller's scope, or raise ``NotFound``.

Another organization's row and a row outside the caller's token scope both look missing, so an
id never reveals whether something exists beyond what the caller may see. A row in a project the
caller may only read (a member's grant without the route's permission) is visible, so it is
refused with 403 instead (``Principal.require_grant``).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coordinator.auth import Principal
from coordinator.db import models
from shared.errors import NotFound

RowT = TypeVar("RowT", bound=Model)


async def visible_or_404(
    model: type[RowT],
    noun: str,
    row_id: str,
    visible: Callable[[RowT], bool],
    db: BaseDBAsyncClient | None = None,
    **within: Any,
) -> RowT:
    """The ``model`` row ``row_id`` matching ``within`` that ``visible`` accepts, else 404."""
    row = await model.get_or_none(id=row_id, using_db=db, **within)
    if row is None or not visible(row):
        raise NotFound(f"{noun} {row_id!r} not found")
    return row


async def first_or_404(
    actor: Principal, rows: QuerySet[RowT], noun: str, row_id: str, project_of: str = "project_id"
) -> RowT:
    """Row ``row_id`` of ``rows`` (a query already narrowed to the caller's scope), else 404;
    403 when its project (the ``project_of`` field) is one the caller may only read."""
    row = await rows.filter(id=row_id).first()
    if row is None:
        raise NotFound(f"{noun} {row_id!r} not found")
    actor.require_grant(str(getattr(row, project_of)))
    return row


async def get_server(
    actor: Principal, server_id: str, db: BaseDBAsyncClient | None = None
) -> models.Server:
    """A server the caller may see."""
    return await visible_or_404(
        models.Server,
        "server",
        server_id,
        lambda row: actor.can_see_server(row.id),
        db,
        organization_id=actor.organization_id,
    )


async def get_project(
    actor: Principal, project_id: str, db: BaseDBAsyncClient | None = None
) -> models.Project:
    """A project the caller may see."""
    return await visible_or_404(
        models.Project,
        "project",
        project_id,
        lambda row: actor.can_see_project(row.id),
        db,
        organization_id=actor.organization_id,
    )


async def get_environment(
    actor: Principal, environment_id: str, db: BaseDBAsyncClient | None = None
) -> models.Environment:
    """An environment the caller may see."""
    return await visible_or_404(
        models.Environment,
        "environment",
        environment_id,
        lambda row: actor.can_see_environment(row.project_id, row.id),  # type: ignore[attr-defined]
        db,
        project__organization_id=actor.organization_id,
    )


async def get_resource(
    actor: Principal, resource_id: str, db: BaseDBAsyncClient | None = None
) -> models.Resource:
    """A resource the caller may see."""
    return await visible_or_404(
        models.Resource,
        "resource",
        resource_id,
        lambda row: actor.can_see_resource(
            row.project_id,  # type: ignore[attr-defined]
            row.environment_id,  # type: ignore[attr-defined]
            row.id,
        ),
        db,
        project__organization_id=actor.organization_id,
    )


async def get_deployment(
    actor: Principal, deployment_id: str, db: BaseDBAsyncClient | None = None
) -> models.Deployment:
    """A deployment the caller may see: its resource and the server it ran on."""
    return await visible_or_404(
        models.Deployment,
        "deployment",
        deployment_id,
        lambda row: (
            actor.can_see_resource(row.project_id, row.environment_id, row.resource_id)
            and actor.can_see_server(row.server_id)
        ),
        db,
        organization_id=actor.organization_id,
    )
