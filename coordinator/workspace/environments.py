"""Environments: their rules (lock, archive, clone, unique names) and persistence, audited."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Literal

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, variables
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.lookup import get_environment, get_project
from coordinator.paging import Page, page_after
from coordinator.secrets import Keyring
from coordinator.workspace import variable_sets
from coordinator.workspace.mutability import current_environment, require_mutable
from coordinator.workspace.projects import require_active_project
from shared.errors import Conflict, Forbidden

SCOPE: Final = "environment"


def status(row: models.Environment) -> Literal["active", "locked", "archived"]:
    """``active``, ``locked`` or ``archived``."""
    if row.lifecycle_status == "locked":
        return "locked"
    if row.lifecycle_status == "archived":
        return "archived"
    return "active"


async def _lock_mutable(environment_id: str) -> None:
    require_mutable(await current_environment(environment_id))


def owner(environment_id: str) -> variable_sets.Owner:
    """The environment as the owner of a variable set (changes need it mutable)."""
    return variable_sets.Owner(SCOPE, environment_id, _lock_mutable, "in this environment")


async def _record(
    actor: Principal, event: str, environment_id: str, request_id: str | None, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"environment.{event}",
        aggregate_type="environment",
        aggregate_id=environment_id,
        payload=payload,
        request_id=request_id,
    )


def _visible(actor: Principal, project_id: str | None) -> QuerySet[models.Environment]:
    rows = models.Environment.filter(project__organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(id__in=list(actor.environment_ids))
    if project_id:
        rows = rows.filter(project_id=project_id)
    return rows


def _duplicate(name: str) -> Conflict:
    return Conflict(f"an environment named {name!r} already exists in this project")


async def create(
    actor: Principal, project_id: str, name: str, kind: str, request_id: str | None
) -> str:
    """Create an active environment; the project must be active. Its id."""
    project = await get_project(actor, project_id)
    if actor.environment_ids:
        raise Forbidden("an environment-scoped token cannot create environments")
    environment_id = new_id("env")
    try:
        async with in_transaction():
            current = await models.Project.filter(id=project.id).select_for_update().get()
            require_active_project(current)
            _ = await models.Environment.create(
                id=environment_id,
                project_id=project.id,
                name=name,
                kind=kind,
                created_at=datetime.now(UTC),
            )
            await _record(
                actor, "created", environment_id, request_id, projectId=project.id, name=name
            )
    except IntegrityError as exc:
        raise _duplicate(name) from exc
    return environment_id


async def page(
    actor: Principal,
    project_id: str | None,
    lifecycle_status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Page[models.Environment], dict[str, list[models.Variable]]]:
    """The environments the caller may see, oldest first, with each one's variables."""
    rows = _visible(actor, project_id)
    if lifecycle_status:
        rows = rows.filter(lifecycle_status=lifecycle_status)
    found = await page_after(rows, cursor, limit)
    owned: dict[str, list[models.Variable]] = {r.id: [] for r in found.items}
    if found.items:
        for var in await models.Variable.filter(
            owner_kind=SCOPE, owner_id__in=list(owned)
        ).order_by("key", "exposure"):
            owned[var.owner_id].append(var)
    return found, owned


async def count(actor: Principal, project_id: str | None) -> int:
    """How many environments the caller may see (optionally in one project)."""
    return await _visible(actor, project_id).count()


async def rename(actor: Principal, environment_id: str, name: str, request_id: str | None) -> str:
    """Change the name; configuration and deployments are unaffected. Its id."""
    row = await get_environment(actor, environment_id)
    try:
        async with in_transaction():
            require_mutable(await current_environment(row.id))
            await models.Environment.filter(id=row.id).update(name=name)
            await _record(actor, "renamed", row.id, request_id, to=name, **{"from": row.name})
    except IntegrityError as exc:
        raise _duplicate(name) from exc
    return row.id


async def lock(
    actor: Principal, environment_id: str, reason: str | None, request_id: str | None
) -> str:
    """Lock an active environment (a locked or archived one is a conflict). Its id."""
    stamps = {"locked_at": datetime.now(UTC), "lock_reason": reason}
    return await _leave_active(actor, environment_id, "locked", reason, request_id, stamps)


async def unlock(actor: Principal, environment_id: str, request_id: str | None) -> str:
    """Make a locked environment active again. Its id."""
    row = await get_environment(actor, environment_id)
    async with in_transaction():
        current = await current_environment(row.id)
        if current.lifecycle_status != "locked":
            raise Conflict(
                f"environment is {status(current)}, not locked", details={"environmentId": row.id}
            )
        await models.Environment.filter(id=row.id).update(
            lifecycle_status="active", locked_at=None, lock_reason=None
        )
        await _record(actor, "unlocked", row.id, request_id)
    return row.id


async def archive(
    actor: Principal, environment_id: str, reason: str | None, request_id: str | None
) -> str:
    """Archive an active environment; its history stays readable. Its id."""
    stamps = {"archived_at": datetime.now(UTC), "archive_reason": reason}
    return await _leave_active(actor, environment_id, "archived", reason, request_id, stamps)


async def _leave_active(
    actor: Principal,
    environment_id: str,
    status: Literal["locked", "archived"],
    reason: str | None,
    request_id: str | None,
    stamps: Mapping[str, object],
) -> str:
    """Move an active environment to ``status`` (its event's name too) with ``stamps`` (when,
    why); a locked or archived one is a conflict. Its id."""
    row = await get_environment(actor, environment_id)
    async with in_transaction():
        require_mutable(await current_environment(row.id))
        await models.Environment.filter(id=row.id).update(lifecycle_status=status, **stamps)
        await _record(actor, status, row.id, request_id, reason=reason)
    return row.id


async def clone(
    actor: Principal,
    keyring: Keyring,
    environment_id: str,
    target_name: str,
    request_id: str | None,
) -> str:
    """A new environment in the same project with copies of the variables (secrets
    re-encrypted for their new rows). The clone's id."""
    row = await get_environment(actor, environment_id)
    if actor.environment_ids:
        raise Forbidden("an environment-scoped token cannot create environments")
    clone_id = new_id("env")
    try:
        async with in_transaction():
            source = await current_environment(row.id)
            require_mutable(source)
            _ = await models.Environment.create(
                id=clone_id,
                project_id=source.project_id,  # type: ignore[attr-defined]
                name=target_name,
                kind=source.kind,
                parent_environment_id=source.id,
                created_at=datetime.now(UTC),
            )
            copied = await variables.copy_variables(
                keyring,
                source_kind=SCOPE,
                source_id=source.id,
                target_kind=SCOPE,
                target_id=clone_id,
            )
            await _record(
                actor,
                "cloned",
                clone_id,
                request_id,
                sourceEnvironmentId=source.id,
                name=target_name,
                variables=copied,
            )
    except IntegrityError as exc:
        raise _duplicate(target_name) from exc
    return clone_id
